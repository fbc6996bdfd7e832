"""Theory against measurement: per-layer gradient norms of width-1000, depth-20 MLPs at init, and the
lab's one-batch gradient measurement of an MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actlab.theory import TheoryError
from actlab.lab.compare import build_mlp, compare, compare_many, layer_gradients, measure_gradients
from actlab.lab.init import init_weights
from actlab.lab.models import MLP
from actlab.probe.quantities.param_grad_norm import param_grad_norm
from actlab.probe.quantities.weight_grad_norm import weight_grad_norm

# Three sigma_w^2 per activation: ordered, near-critical and chaotic where the activation has them.
SETTINGS = [
    ("tanh", 1.0, 0.0, {}), ("tanh", 1.5, 0.05, {}), ("tanh", 2.5, 0.0, {}),
    ("relu", 1.5, 0.0, {}), ("relu", 2.0, 0.0, {}), ("relu", 2.5, 0.1, {}),
    ("sigmoid", 1.0, 0.0, {}), ("sigmoid", 4.0, 0.0, {}), ("sigmoid", 16.0, 0.0, {}),
]


@pytest.fixture(scope="module")
def measured():
    return compare_many(SETTINGS, depth=20, width=1000, seeds=5, batch=32, threads=1)


@pytest.mark.parametrize("i", range(len(SETTINGS)), ids=[f"{a}-{w}-{b}" for a, w, b, _ in SETTINGS])
def test_measured_gradients_follow_theory_within_10_percent(measured, i):
    c = measured[i]
    assert c.width == 1000 and c.depth == 20 and c.seeds == 5
    assert c.predicted.shape == c.measured.shape == (20,)
    assert np.all(np.abs(c.ratio - 1) < 0.10), c.ratio


def test_theory_spans_orders_of_magnitude(measured):
    # The check is not trivial: the predicted profiles vanish or explode over depth.
    spans = {(c.activation, c.sigma_w2): c.predicted[0] / c.predicted[-1] for c in measured}
    assert spans[("sigmoid", 1.0)] < 1e-10
    assert spans[("relu", 2.5)] > 5
    assert 0.9 < spans[("relu", 2.0)] < 1.1


def test_compare_single_and_gram_param_gradient():
    c = compare("tanh", 1.2, depth=3, width=40, seeds=2, batch=8)
    assert c.to_dict()["quantity"].startswith("RMS")
    # The Gram-matrix weight-gradient norm equals autograd's.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = build_mlp("tanh", 16, 3, 1.5, 0.1, generator=g, dtype=torch.float64)
    x = torch.randn(5, 16, dtype=torch.float64)
    r = torch.randn(5, 16, dtype=torch.float64)
    pre, wg = measure_gradients(model, x, r)
    for p in model.parameters():
        p.requires_grad_(True)
    model(x).backward(r)
    lin = [m for m in model if isinstance(m, torch.nn.Linear)][:-1]
    # the Gram-matrix norm is the probe's weight_grad_norm: the weights alone, what the theory predicts
    assert np.allclose(wg, [float(weight_grad_norm(m.weight.grad)) for m in lin], rtol=1e-10)
    assert np.allclose(wg, [float(m.weight.grad.norm()) for m in lin], rtol=1e-10)
    # ... not param_grad_norm: with sigma_b2 = 0.1 the bias gradient counts there
    assert not np.allclose(wg, [float(param_grad_norm(m.weight.grad, m.bias.grad)) for m in lin], rtol=1e-6)
    assert pre.shape == (3,)


def test_probe_measures_the_same():
    kw = {"depth": 4, "width": 48, "seeds": 2, "batch": 6, "dtype": torch.float64}
    a = compare("tanh", 1.5, 0.1, measure="hooks", **kw)
    b = compare("tanh", 1.5, 0.1, measure="probe", **kw)
    assert np.allclose(a.measured, b.measured, rtol=1e-9)
    assert np.allclose(a.weight_grad, b.weight_grad, rtol=1e-9)


def test_compare_errors():
    with pytest.raises(TheoryError):
        compare("step", 1.0, depth=2, width=8)
    with pytest.raises(TheoryError, match="sigma_w2"):
        compare("tanh", -1.0, depth=2, width=8)
    with pytest.raises(TheoryError, match="depth"):
        compare("tanh", 1.0, depth=0, width=8)
    with pytest.raises(ValueError, match="width"):
        compare("tanh", 1.0, depth=2, width=0)
    with pytest.raises(ValueError, match="measure"):
        compare("tanh", 1.0, depth=2, width=8, measure="magic")


def test_layer_gradients_are_param_grad_norms_and_leave_grads_alone():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=g), torch.randint(0, 3, (64,), generator=g)
    model = init_weights(MLP(8, 3, depth=3, width=16, activation="sigmoid"), "xavier_normal", seed=0)
    with torch.no_grad():
        for lin in model.linear_layers():
            lin.bias.normal_(0, 0.1)
    lg = layer_gradients(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    torch.nn.functional.cross_entropy(model(x), y).backward()
    want = [float(param_grad_norm(lin.weight.grad, lin.bias.grad)) for lin in model.linear_layers()]
    assert lg.param_grad_norms == pytest.approx(want, rel=1e-5)
    weights = [float(lin.weight.grad.norm()) for lin in model.linear_layers()]
    assert lg.weight_grad_norms == pytest.approx(weights, rel=1e-5)
    assert lg.weight_grad_norms != pytest.approx(want, rel=1e-5)  # the biases (N(0, 0.1^2)) get gradients
    # sigmoid's derivative from the spec is s(1 - s), at most 1/4
    z = lg.pre[0]
    assert torch.allclose(lg.derivative[0], torch.sigmoid(z) * (1 - torch.sigmoid(z)), atol=1e-6)
    assert float(lg.derivative[0].max()) <= 0.25
    with pytest.raises(ValueError, match="loss must be"):
        layer_gradients(model, x, y, loss="hinge")
