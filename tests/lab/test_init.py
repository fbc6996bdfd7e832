"""Initialisation schemes: each one's statistics, per-layer gains, biases, seeding, recurrent
weights, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from actlab.lab.init import BIAS_SCHEMES, INIT_SCHEMES, InitError, activation_gain, critical_sigma_w2, init_weights
from actlab.lab.models import MLP, RNNModel, SmallCNN

FAN = 400


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net(activation: str = "relu", **kw) -> MLP:
    return MLP(FAN, 10, depth=2, width=FAN, activation=activation, **kw)


def _var(layer: nn.Module) -> float:
    return float(layer.weight.detach().double().var())


def _kw(scheme: str) -> dict:
    return {"value": 0.05} if scheme == "constant" else {}


MAKERS = {
    "mlp": lambda: _net(),
    "cnn": lambda: SmallCNN(1, 10, image_size=8),
    "lstm": lambda: RNNModel("lstm", 2, 8, 1),
    "rnn": lambda: RNNModel("rnn", 2, 8, 1, activation="relu"),
}


@pytest.mark.parametrize("scheme", list(INIT_SCHEMES))
@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_every_scheme_runs_on_every_model_and_is_seeded(scheme: str, make) -> None:
    a = init_weights(make(), scheme, seed=3, **_kw(scheme))
    b = init_weights(make(), scheme, seed=3, **_kw(scheme))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.isfinite(p).all() and torch.equal(p, q)
    if scheme not in ("zeros", "constant"):
        c = init_weights(make(), scheme, seed=4, **_kw(scheme))
        assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_registry_descriptions_and_unknown_scheme() -> None:
    assert {"zeros", "constant", "normal", "uniform_standard", "torch_default", "xavier_uniform", "xavier_normal",
            "he_normal", "he_uniform", "lecun_normal", "orthogonal", "critical", "rai"} <= set(INIT_SCHEMES)
    assert all(len(v) > 10 for v in INIT_SCHEMES.values())
    with pytest.raises(InitError) as e:
        init_weights(_net(), "he_norml")
    assert "Did you mean 'he_normal'" in str(e.value) and "xavier_uniform" in str(e.value)
    with pytest.raises(InitError, match="valid: zeros, constant"):
        init_weights(_net(), "he_normal", bias="ones")
    with pytest.raises(InitError, match="needs value="):
        init_weights(_net(), "constant")


def test_he_normal_variance_is_2_over_fan_in_with_the_leaky_slope() -> None:
    m = init_weights(_net("relu"), "he_normal", seed=0)
    for layer in m.linear_layers()[:2]:
        assert _var(layer) * FAN == pytest.approx(2.0, rel=0.02)
    m = init_weights(_net("leaky_relu", activation_params={"negative_slope": 0.5}), "he_normal", seed=0)
    assert _var(m.hidden_layers()[1]) * FAN == pytest.approx(2.0 / 1.25, rel=0.02)
    # fan_out: the output layer (10 x 400) gets 2 / 10.
    m = init_weights(_net(), "he_normal", mode="fan_out", seed=0)
    assert _var(m.output_layer) * 10 == pytest.approx(2.0, rel=0.05)
    m = init_weights(_net(), "he_uniform", seed=0)
    w = m.hidden_layers()[1].weight.detach()
    assert float(w.abs().max()) <= math.sqrt(6 / FAN) and _var(m.hidden_layers()[1]) * FAN == pytest.approx(2, rel=0.02)


def test_gains_follow_the_activation_feeding_each_layer() -> None:
    m = MLP(FAN, 10, depth=3, width=FAN, activation=["relu", "leaky_relu", "tanh"],
            activation_params=[None, {"negative_slope": 0.5}, None])
    init_weights(m, "he_normal", seed=0)
    v = [_var(layer) * FAN for layer in m.linear_layers()]
    # Layer 1 borrows the first activation (relu); layer 2 is fed by relu, layer 3 by leaky(0.5).
    assert v[0] == pytest.approx(2.0, rel=0.02) and v[1] == pytest.approx(2.0, rel=0.02)
    assert v[2] == pytest.approx(2.0 / 1.25, rel=0.02)
    init_weights(m, "he_normal", activation="relu", seed=0)  # an explicit activation overrides
    assert _var(m.linear_layers()[2]) * FAN == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("scheme,expected", [
    ("xavier_normal", lambda fi, fo: 2 / (fi + fo)),
    ("xavier_uniform", lambda fi, fo: 2 / (fi + fo)),
    ("lecun_normal", lambda fi, fo: 1 / fi),
    ("uniform_standard", lambda fi, fo: 1 / (3 * fi)),
    ("torch_default", lambda fi, fo: 1 / (3 * fi)),
])
def test_variance_of_the_classic_schemes(scheme: str, expected) -> None:
    m = init_weights(MLP(FAN, 10, depth=1, width=2 * FAN), scheme, seed=0)
    layer = m.hidden_layers()[0]
    assert _var(layer) == pytest.approx(expected(FAN, 2 * FAN), rel=0.02)
    if "uniform" in scheme or scheme == "torch_default":
        bound = math.sqrt(6 / (3 * FAN)) if scheme == "xavier_uniform" else 1 / math.sqrt(FAN)
        assert float(layer.weight.detach().abs().max()) <= bound + 1e-7


def test_normal_std_orthogonal_and_gain() -> None:
    m = init_weights(_net(), "normal", std=0.05, seed=0)
    assert math.sqrt(_var(m.hidden_layers()[1])) == pytest.approx(0.05, rel=0.02)
    assert math.sqrt(_var(init_weights(_net(), "normal", seed=0).hidden_layers()[1])) == pytest.approx(0.01, rel=0.02)
    m = init_weights(_net(), "orthogonal", gain=2.0, seed=0)
    w = m.hidden_layers()[1].weight.double()
    assert torch.allclose(w @ w.T, 4 * torch.eye(FAN, dtype=torch.float64), atol=1e-4)
    m = init_weights(_net("tanh"), "xavier_normal", gain="auto", seed=0)
    assert _var(m.hidden_layers()[1]) * FAN == pytest.approx(activation_gain("tanh") ** 2, rel=0.03)


def test_zero_and_constant_init_never_break_symmetry() -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 6)
    y = torch.randint(0, 3, (32,))
    for scheme, kw in (("zeros", {}), ("constant", {"value": 0.1})):
        m = init_weights(MLP(6, 3, depth=2, width=8, activation="tanh"), scheme, **kw)
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        _, pre, post = m.forward_all(x)
        for h in post:
            assert torch.allclose(h, h[:, :1].expand_as(h))  # every hidden unit computes the same
        w = m.hidden_layers()[1].weight
        assert int(torch.linalg.matrix_rank(w)) <= 1


def test_critical_init_uses_the_theory() -> None:
    from actlab import theory

    m = init_weights(_net("relu"), "critical", seed=0)
    assert _var(m.hidden_layers()[1]) * FAN == pytest.approx(2.0, rel=0.02)
    m = init_weights(_net("tanh"), "critical", seed=0)
    assert _var(m.hidden_layers()[1]) * FAN == pytest.approx(1.0, rel=0.02)
    assert critical_sigma_w2("erf", 0.05) == pytest.approx(theory.critical_sigma_w2("erf", 0.05))
    # GELU's chi_1 jumps over 1 (q* switches between 0 and inf): no edge of chaos to init at.
    with pytest.raises(InitError, match="no critical init for 'gelu'"):
        critical_sigma_w2("gelu", 0.05)
    m = init_weights(_net("tanh"), "critical", sigma_b2=0.05, seed=0)
    expect = theory.critical_sigma_w2("tanh", 0.05)
    assert _var(m.hidden_layers()[1]) * FAN == pytest.approx(expect, rel=0.02)
    assert float(m.hidden_layers()[1].bias.detach().double().std()) == pytest.approx(math.sqrt(0.05), rel=0.2)
    assert critical_sigma_w2("maxout") == pytest.approx(1.0)
    with pytest.raises(InitError, match="no critical init for 'step'"):
        init_weights(_net("step"), "critical")


def test_rai_puts_one_beta_2_1_entry_in_each_unit() -> None:
    # Linear(9, N): each unit has 10 entries (9 weights + bias); one is Beta(2, 1) (mean 2/3),
    # the rest N(0, 0.36 / 9).
    layer = nn.Linear(9, 20000)
    init_weights(nn.Sequential(layer, nn.ReLU()), "rai", seed=0)
    v = torch.cat([layer.weight, layer.bias[:, None]], 1).detach().double()
    assert float(v.mean()) == pytest.approx(2 / 3 / 10 * 1 + 0, abs=0.004)
    assert float(v.mean(1).gt(0).double().mean()) > 0.7  # asymmetric: most units lean positive
    sym_var = 0.6007**2 / 9
    total_second = (9 * sym_var + 0.5) / 10  # E[Beta(2,1)^2] = 1/2
    assert float((v**2).mean()) == pytest.approx(total_second, rel=0.03)


@pytest.mark.parametrize("bias,check", [
    ("zeros", lambda b: torch.equal(b, torch.zeros_like(b))),
    (0.3, lambda b: torch.allclose(b, torch.full_like(b, 0.3))),
    ("constant", lambda b: torch.allclose(b, torch.full_like(b, -2.0))),
    ("normal", lambda b: abs(float(b.std()) - 2.0) < 0.2),
    ("uniform", lambda b: float(b.abs().max()) <= 1 / math.sqrt(FAN)),
])
def test_bias_schemes(bias, check) -> None:
    m = init_weights(_net(), "he_normal", bias=bias, bias_value=-2.0 if bias == "constant" else 2.0, seed=0)
    assert check(m.hidden_layers()[1].bias.detach())
    assert set(BIAS_SCHEMES) == {"zeros", "constant", "normal", "uniform"}


def test_recurrent_weights_per_gate_block_and_b_hh_zero() -> None:
    m = RNNModel("lstm", 3, 16, 1)
    init_weights(m, "orthogonal", seed=0)
    w_hh = m.rnn.weight_hh_l0.detach().double()
    for g in range(4):
        block = w_hh[g * 16:(g + 1) * 16]
        assert torch.allclose(block @ block.T, torch.eye(16, dtype=torch.float64), atol=1e-5)
    assert torch.equal(m.rnn.bias_hh_l0, torch.zeros(64)) and torch.equal(m.rnn.bias_ih_l0, torch.zeros(64))
    r = init_weights(RNNModel("rnn", 3, 300, 1, activation="relu"), "he_normal", seed=0)
    assert float(r.rnn.weight_hh_l0.detach().double().var()) * 300 == pytest.approx(2.0, rel=0.03)


def test_seed_none_follows_the_global_rng() -> None:
    torch.manual_seed(5)
    a = init_weights(_net(), "he_normal")
    torch.manual_seed(5)
    b = init_weights(_net(), "he_normal")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
