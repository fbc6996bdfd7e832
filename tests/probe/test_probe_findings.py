"""Deliberately broken networks are each found by the right detector; healthy ones give no finding."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from probe_nets import Encoder, Nested, SeqLSTM, SmallCNN, he_init, mlp, train
from torch import nn

from actlab.probe import Probe


def run(model: nn.Module, steps: int = 40, lr: float = 0.05, seed: int = 0, hook=None, **probe_kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Probe(model, **probe_kw) as probe:
            losses = train(model, steps=steps, lr=lr, seed=seed, hook=hook)
        return probe, probe.findings(), losses


def kinds(findings) -> list[str]:
    """The kinds of the findings, without the info lines saying what the probe could not see."""
    return [f.kind for f in findings if f.kind != "blind"]


def test_deep_sigmoid_vanishing_gradients_near_the_input():
    torch.manual_seed(0)
    probe, findings, _ = run(mlp(nn.Sigmoid, depth=10), steps=30, lr=0.1)
    van = [f for f in findings if f.kind == "vanishing_gradients"]
    assert len(van) == 1
    f = van[0]
    assert f.layers[0] == "0"  # the first Linear: the input side
    assert f.figures["ratio_first_to_max"] < 1e-3
    assert f.figures["max_layer"] == "18"  # the last Linear gets the largest gradient
    assert "sigmoid" in f.cause and "ReLU" in f.advice
    # the per-layer gradient norms the finding rests on grow toward the output
    g = list(probe.layer_grad_norms(which="rms").values())
    assert g[0] < g[-1] * 1e-3


def test_small_attention_gradients_at_hf_init_are_not_vanishing_gradients():
    """At BERT's init (normal 0.02) the attention logits are near zero, so every block's query and
    key projections get weight gradients ~1e-5 of the classifier's, the last block's as small as
    the first's: no trend along depth, and comparing a query projection with the classifier mixes
    roles.  The depth profile is judged within families of the same layer (block index varied)."""
    from zoo import BertStyle, Case, run as zoo_run

    case = Case("bert_hf_init_lr1e-4", BertStyle, steps=8, lr=1e-4, batch=64, optim="adamw", data="tokens")
    findings, _, probe = zoo_run(case, seed=0)
    rms = probe.layer_grad_norms(which="rms")
    q = [v for n, v in rms.items() if n.endswith("self.query")]
    # the situation that fooled a rule across roles is there: query gradients below 1e-3 of the classifier's
    assert len(q) == 3 and max(q) < 1e-3 * rms["classifier"]
    assert max(q) / min(q) < 10  # ... in the last block as in the first
    assert "vanishing_gradients" not in kinds(findings), [str(f) for f in findings]


def test_vanishing_is_judged_within_a_family_of_homologous_layers():
    from actlab.probe.findings import _family

    assert _family("bert.encoder.layer.11.attention.self.query") == "bert.encoder.layer.#.attention.self.query"
    assert _family("fc3") == _family("fc1") == "fc#"
    assert _family("4") == _family("18") == "#"  # a Sequential's layers: one stack
    assert _family("classifier") != _family("encoder.layer.0.output")


def test_relu_very_negative_bias_gives_dead_units():
    torch.manual_seed(0)
    model = he_init(mlp(nn.ReLU, depth=4))
    with torch.no_grad():
        model[2].bias.fill_(-10.0)
    _, findings, _ = run(model, steps=30, window=10)
    dead = [f for f in findings if f.kind == "dead_units"]
    assert dead and dead[0].layers == ["3"]
    assert dead[0].figures["dead_fraction"] > 0.5
    assert "bias" in dead[0].cause
    assert dead[0].figures["producer"] == "2"
    # the layers below get no gradient through the dead ones: the vanishing finding says why
    van = [f for f in findings if f.kind == "vanishing_gradients"]
    assert not van or "dead units" in van[0].cause


def test_relu_large_learning_rate_gives_dead_units():
    torch.manual_seed(0)
    _, findings, _ = run(he_init(mlp(nn.ReLU, depth=4)), steps=80, lr=1.8, window=20)
    dead = [f for f in findings if f.kind == "dead_units"]
    assert dead, kinds(findings)
    assert "learning rate" in dead[0].cause
    assert dead[0].figures["max_update_ratio"] > 1e-2
    assert "leaky ReLU" in dead[0].advice


def test_tanh_large_init_saturates():
    torch.manual_seed(0)
    model = mlp(nn.Tanh, depth=4)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(8)
    _, findings, _ = run(model, steps=30)
    sat = [f for f in findings if f.kind == "saturation"]
    assert sat and set(sat[0].layers) == {"1", "3", "5"}
    assert min(sat[0].figures["saturated_fraction"].values()) > 0.25
    assert "Xavier" in sat[0].advice
    assert "dead_units" not in kinds(findings)  # tanh cannot die; saturation is the diagnosis


def test_saturation_cites_the_weights_that_feed_the_saturated_layer():
    # two layers with large weights: the one feeding the saturated tanh is the evidence; the larger
    # one feeding a ReLU (which does not saturate) is not
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        model[0].weight.mul_(8)
        model[2].weight.mul_(30)
    _, findings, _ = run(model, steps=10, lr=0.001)
    sat = [f for f in findings if f.kind == "saturation"]
    assert sat and sat[0].layers == ["1"]
    assert "layer 0 has sigma_w^2" in sat[0].cause and "layer 2" not in sat[0].cause


def test_sigmoid_not_zero_centred():
    torch.manual_seed(0)
    _, findings, _ = run(mlp(nn.Sigmoid, depth=3), steps=30, lr=0.1)
    assert kinds(findings) == ["not_zero_centred"]
    f = findings[0]
    assert f.severity == "info" and f.layers == ["1", "3"]
    assert min(f.figures["mean_over_std"].values()) > 1.0
    assert "tanh" in f.advice


def test_nan_injected_mid_network_first_layer_and_step():
    def inject(step, model):
        if step == 7:
            with torch.no_grad():
                model[4].weight[0, 0] = float("nan")

    torch.manual_seed(0)
    _, findings, losses = run(mlp(nn.ReLU, depth=4), steps=12, hook=inject, param_outputs=True)
    assert findings[0].kind == "non_finite" and findings[0].severity == "error"
    assert findings[0].figures["step"] == 7
    assert findings[0].layers == ["4"]  # the Linear whose weight went NaN, not a later layer
    assert findings[0].figures["where"] == "forward"
    assert all(math.isnan(v) for v in losses[7:])  # training went on (NaN losses), no crash


def test_nan_without_parametrised_outputs_names_the_activation_after_it():
    def inject(step, model):
        if step == 3:
            with torch.no_grad():
                model[4].weight[0, 0] = float("nan")

    torch.manual_seed(0)
    _, findings, _ = run(mlp(nn.ReLU, depth=4), steps=6, hook=inject)
    f = findings[0]
    assert f.kind == "non_finite" and f.figures["step"] == 3 and f.layers == ["5"]
    assert f.figures["after"] == "4"


@pytest.mark.parametrize(
    "name, make, lr, steps",
    [
        ("he_relu_mlp", lambda: he_init(mlp(nn.ReLU, depth=6, width=128)), 0.05, 60),
        ("small_cnn", SmallCNN, 0.05, 60),
        ("lstm", SeqLSTM, 0.5, 60),
        ("gru", lambda: SeqLSTM(nn.GRU), 0.5, 40),
        ("rnn", lambda: SeqLSTM(nn.RNN), 0.1, 40),
        ("encoder_layernorm_gelu", Encoder, 0.05, 60),
        ("nested_containers", Nested, 0.05, 40),
    ],
)
def test_healthy_networks_give_no_finding(name, make, lr, steps):
    torch.manual_seed(0)
    probe, findings, losses = run(make(), steps=steps, lr=lr)
    assert kinds(findings) == [], [str(f) for f in findings]
    assert losses[-1] < losses[0]  # they do train
    assert probe.records()


def test_born_dead_check_at_initialisation():
    torch.manual_seed(0)
    model = he_init(mlp(nn.ReLU, depth=4))
    with torch.no_grad():
        model[2].bias.fill_(-10.0)
    x = torch.randn(64, 64)
    probe = Probe(model)
    found = probe.born_dead(x)
    assert [f.kind for f in found] == ["born_dead"]
    # layer 3 is dead; layer 5 behind it gets only Linear 4's zero bias, so it is dead too
    assert found[0].layers[0] == "3" and found[0].figures["dead_fraction"]["3"] > 0.9
    assert probe.records() == []  # the check is not a training step
    assert found[0] in probe.findings()
    healthy = Probe(he_init(mlp(nn.ReLU, depth=4)))
    assert healthy.born_dead(x) == []
