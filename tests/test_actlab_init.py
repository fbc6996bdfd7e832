"""actlab.init: re-initialise a model per each layer's activation, by name, in place."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import actlab.init
from actlab import theory
from actlab.activations import get, specs
from actlab.lab.init import InitError, activation_gain, critical_point
from actlab.lab.models import MLP


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))


def _sw2(layer: nn.Linear) -> float:
    return float(layer.weight.detach().double().square().mean()) * layer.in_features


def test_critical_uses_each_layers_activation():
    m = actlab.init.critical_(_net(), seed=0)
    # the layer fed by ReLU gets sigma_w^2 = 2; the one fed by tanh gets 1 (the theory's critical values)
    assert _sw2(m[2]) == pytest.approx(2.0, rel=0.05)
    assert _sw2(m[4]) == pytest.approx(1.0, rel=0.05)


def test_he_and_xavier():
    m = actlab.init.he_(_net(), seed=0)
    assert _sw2(m[2]) == pytest.approx(2.0, rel=0.05)
    assert all(float(l.bias.detach().abs().max()) == 0 for l in m if isinstance(l, nn.Linear))
    m = actlab.init.xavier_(_net(), seed=0)
    var = float(m[4].weight.var())
    gain = activation_gain("tanh")
    assert var == pytest.approx(gain ** 2 * 2 / (256 + 10), rel=0.1)


def test_lsuv_gives_unit_output_variance_and_leaves_rng_alone():
    m = _net()
    x = torch.randn(512, 64)
    state = torch.random.get_rng_state()
    actlab.init.lsuv_(m, x, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.no_grad():
        h = m[0](x)
        assert float(h.var()) == pytest.approx(1.0, abs=0.06)
        h = m[2](m[1](h))
        assert float(h.var()) == pytest.approx(1.0, abs=0.06)


def test_lsuv_bad_arguments():
    with pytest.raises(actlab.init.InitError, match="tol must be a positive number, got 0"):
        actlab.init.lsuv_(_net(), torch.randn(4, 64), tol=0)
    with pytest.raises(actlab.init.InitError, match="max_iter must be a positive integer, got 0"):
        actlab.init.lsuv_(_net(), torch.randn(4, 64), max_iter=0)


def test_critical_fixes_the_zoo_vanishing_case():
    """The advice actlab.init.critical_ gives: a depth-16 tanh net at sigma_w^2 = 0.25 vanishes; after it, not."""
    from actlab.probe import Probe

    torch.manual_seed(0)
    layers = []
    for _ in range(15):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    m = nn.Sequential(*layers, nn.Linear(64, 10))
    for l in m:
        if isinstance(l, nn.Linear):
            nn.init.normal_(l.weight, 0, math.sqrt(0.25 / 64))
    def grads(model):
        with Probe(model) as p:
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            for i in range(3):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(torch.randn(64, 64)), torch.randint(0, 10, (64,))).backward()
                opt.step()
        return [f.kind for f in p.findings()]
    assert "vanishing_gradients" in grads(m)
    assert "vanishing_gradients" not in grads(actlab.init.critical_(m, seed=0))


def test_critical_reads_a_handwritten_activation():
    """GPT-2's written-out tanh GELU is recognised (the probe's grid match): fc_out gets gelu_tanh's gain."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "probe"))
    from zoo import GPTBlock

    torch.manual_seed(0)
    m = actlab.init.xavier_(GPTBlock(d=64), seed=0)
    gain = activation_gain("gelu_tanh")
    assert gain != pytest.approx(1.0, abs=0.05)
    var = float(m.fc_out.weight.detach().var())
    assert var == pytest.approx(gain ** 2 * 2 / (256 + 64), rel=0.1)


@pytest.mark.parametrize("name", [s.name for s in specs()])
def test_critical_for_every_activation_is_the_theorys_point_or_a_one_line_reason(name):
    """Every catalog activation: the layers get the theory's critical point (at sigma_b^2 = 0, or
    the smallest bias variance that has one), or critical_ refuses in one line naming why and
    what to use instead; never a raw exception."""
    torch.manual_seed(0)
    m = MLP(256, 4, depth=2, width=256, activation=name)
    try:
        sw2, sb2 = critical_point(name)
    except InitError as e:
        msg = str(e)
        assert "\n" not in msg and repr(name) in msg and "xavier_" in msg and "he_" in msg, msg
        with pytest.raises(InitError) as raised:
            actlab.init.critical_(m, seed=0)
        assert str(raised.value) == msg
        return
    actlab.init.critical_(m, seed=0)
    assert sw2 > 0 and sb2 >= 0 and math.isfinite(sw2)
    # the layer fed by the activation (the second hidden layer) carries the point
    layer = m.hidden_layers()[1]
    assert _sw2(layer) == pytest.approx(sw2, rel=0.05)
    b = layer.bias.detach().double()
    assert float(b.square().mean()) == pytest.approx(sb2, rel=0.5, abs=1e-12)
    if get(name).elementwise:
        assert theory.chi_1(name, sw2, sb2) == pytest.approx(1.0, abs=1e-5)


def test_gelu_gets_the_critical_point_at_the_smallest_bias_variance_that_has_one():
    # GELU has no edge of chaos at sigma_b^2 = 0: chi_1 jumps over 1 (q* switches between 0 and inf)
    with pytest.raises(theory.TheoryError):
        theory.critical_sigma_w2("gelu", 0.0)
    sw2, sb2 = critical_point("gelu")
    assert sb2 > 0 and theory.chi_1("gelu", sw2, sb2) == pytest.approx(1.0, abs=1e-6)
    smaller = [b for b in theory.CRITICAL_SIGMA_B2 if b < sb2]
    for b in smaller:  # none of the smaller ones has one
        with pytest.raises(theory.TheoryError):
            theory.critical_sigma_w2("gelu", b)
    # asked for sigma_b2 = 0 explicitly: a one-line refusal that names the point to use instead
    with pytest.raises(InitError) as e:
        actlab.init.critical_(nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 2)), sigma_b2=0.0)
    assert "\n" not in str(e.value) and f"sigma_b2={sb2:g}" in str(e.value)
    # ReLU and tanh keep sigma_b^2 = 0
    assert critical_point("relu") == (pytest.approx(2.0), 0.0)
    assert critical_point("tanh")[1] == 0.0
