"""Vanishing judged from the output-gradient profile (findings/profile.py: attenuation), the
plateau's "learning rate too low" only when the update ratios were small all along (findings/loss.py),
and the measured per-layer attenuation against the mean field at PyTorch's default init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from zoo import Case, he, mlp, run

from actlab.activations import get
from actlab.probe.findings import Thresholds
from actlab.probe.findings.loss import loss_findings
from actlab.probe.findings.profile import attenuation
from actlab.probe.records import LayerInfo, LayerRecord, ProbeRecords, Settings

SETTINGS = Settings(model="m", every=1, window=50, saturation=0.05, update_every=1, out_grads_every=1)


def _act_layers(n: int) -> list[LayerInfo]:
    return [LayerInfo(f"a{i}", "activation", "Tanh", get("tanh"), i, False, (), 0) for i in range(n)]


def test_attenuation_says_since_when_the_profile_vanished():
    # three tanh layers; the first's output gradient is as large as the last's for steps 0-4, then 1e-5 of it
    layers = _act_layers(3)
    recs = []
    for step in range(10):
        first = 1.0 if step < 5 else 1e-5
        for i, g in enumerate((first, 1e-2 if step >= 5 else 1.0, 1.0)):
            recs.append(LayerRecord(step, f"a{i}", i, "activation", "Tanh", "tanh", out_grad_norm=g))
    data = ProbeRecords(SETTINGS, layers, recs)
    recent = [r for r in recs if r.step >= 5]
    att = attenuation(data, recent, recs, Thresholds())
    assert att is not None
    assert att.since == 5 and att.first_step == 0
    assert att.ratio == pytest.approx(1e-5)
    assert att.per_layer == pytest.approx(math.sqrt(1e-5))
    # the early window alone shows nothing: no finding, not a weaker one
    assert attenuation(data, [r for r in recs if r.step < 5], recs, Thresholds()) is None


def _plateau(ratios: list[float]) -> str:
    recs = [LayerRecord(s, "fc", 0, "parametrised", "Linear", "", update_ratio=u) for s, u in enumerate(ratios)]
    data = ProbeRecords(SETTINGS, [], recs, losses=[(s, 0.69) for s in range(len(ratios))])
    found = loss_findings(data, recs, Thresholds(), [])
    assert [f.kind for f in found] == ["loss_trend"]
    return found[0].cause


def test_plateau_blames_the_learning_rate_only_when_updates_were_always_tiny():
    assert _plateau([1e-7] * 40).startswith("learning rate too low")
    # the same tiny updates now, after updates of 1e-2 at the start: the gradients fell, not the step size
    cause = _plateau([1e-2, 5e-3] + [1e-9] * 38)
    assert "learning rate too low" not in cause
    assert "gradients shrank" in cause and "reached 0.01" in cause


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.Tanh, nn.GELU, nn.ReLU])
def test_measured_attenuation_matches_the_mean_field_at_default_init(act):
    # PyTorch's default init, sigma_w^2 = 1/3: the output-gradient norm falls by sqrt(chi_1) per layer
    case = Case("default_init", lambda: mlp(act, 10), steps=3, lr=1e-4)
    _, _, probe = run(case, seed=0)
    data = probe._data()
    recs = data.records
    att = attenuation(data, recs, recs, Thresholds(vanishing=1.0))
    assert att is not None and att.activation == get(act.__name__.lower()).name
    assert att.sigma_w2 == pytest.approx(1 / 3, rel=0.1)
    assert att.per_layer == pytest.approx(att.theory, rel=0.1), (att.per_layer, att.theory)
    assert att.since == 0


def test_he_relu_profile_does_not_vanish():
    # the same depth at the variance-preserving scale: the profile is flat, nothing is reported
    findings, _, probe = run(Case("he", lambda: he(mlp(nn.ReLU, 10)), steps=20), seed=0)
    data = probe._data()
    att = attenuation(data, data.records, data.records, Thresholds(vanishing=1.0))
    assert att is None or att.per_layer > 0.7
    assert attenuation(data, data.records, data.records, Thresholds()) is None
    assert "vanishing_gradients" not in {f.kind for f in findings}
