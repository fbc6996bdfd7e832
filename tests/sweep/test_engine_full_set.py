"""The engine's whole-training-set metrics (training error, dead/off units) and its use of the
lab's initialiser equal what the one-by-one reference model and the lab's own code give."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from actlab.activations import get
from actlab.lab.init import init_weights
from actlab.lab.models import MLP
from actlab.sweep.engine import (
    init_params,
    lab_model,
    load_data,
    reference_model,
    train_configs,
    train_group,
    train_reference,
)
from actlab.sweep.spec import Config, Record, SpecError, parse_spec, validate_config

SMALL = {"depth": 2, "width": 16, "steps": 25, "batch_size": 32}
F64 = torch.float64


def _loss_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        out = model(x)
        return float(torch.nn.functional.cross_entropy(out, y)), float((out.argmax(-1) != y).double().mean())


def _units(model: torch.nn.Module, config: Config, x: torch.Tensor) -> tuple[float, float]:
    """Dead and off fractions of the reference model's hidden units, straight from the spec."""
    spec = get(config.activation)
    p = {**spec.resolve(**dict(config.activation_params)), "training": False}
    dead = off = units = 0
    h = x
    with torch.no_grad():
        for lin in [m for m in model.modules() if isinstance(m, torch.nn.Linear)][:-1]:
            z = lin(h)
            h = spec.forward(z, p)
            dead += int((spec.derivative(z, h, p) == 0).all(0).sum())
            off += int((z <= 0).all(0).sum())
            units += z.shape[1]
    return dead / units, off / units


@pytest.mark.parametrize("optimiser, lr", [("sgd", 0.2), ("adam", 0.01)])
def test_train_loss_and_error_at_record_steps_equal_the_reference(optimiser, lr):
    cs = [Config(activation=a, seed=s, lr=lr, optimiser=optimiser, **SMALL) for a in ("relu", "tanh") for s in (0, 1)]
    rec = Record(every=10, first=4, metrics=("loss", "train_loss", "train_error"), target_error=0.6)
    res = train_group(cs, rec, dtype=F64, threads=2)
    d = load_data("digits", dtype=F64)
    for c, r in zip(cs, res):
        curve = r.curve("train_error")
        assert [n for n, _ in curve] == [0, 5, 15, 25] == r.eval_steps  # steps done: init, then after steps 4, 14, 24
        assert [x["step"] for x in r.records] == [4, 14, 24]
        assert [n for n, _ in r.curve("train_loss")] == [0, 5, 15, 25]
        for (n, err), (_, loss) in zip(curve, r.curve("train_loss")):
            model = (reference_model(c, d.in_features, d.n_classes, dtype=F64) if n == 0 else
                     train_reference(dataclasses.replace(c, steps=n), dtype=F64)[1])
            ref_loss, ref_err = _loss_error(model, d.x_train, d.y_train)
            assert err == pytest.approx(ref_err, abs=1e-12), (c.label, n)
            assert loss == pytest.approx(ref_loss, rel=1e-9), (c.label, n)
        assert [x["train_error"] for x in r.records] == pytest.approx([e for _, e in curve[1:]], abs=1e-12)
        hit = [n for n, e in curve if e <= 0.6]
        assert r.steps_to_target == (hit[0] if hit else None)


def test_steps_to_target_counts_from_init_and_ignores_diverged_models():
    ok = Config(activation="relu", seed=0, lr=0.2, **SMALL)
    bad = Config(activation="relu", seed=3, lr=1e4, **SMALL)
    res = train_group([ok, bad], Record(every=5, metrics=("loss", "train_error"), target_error=1.0), threads=1)
    assert res[0].steps_to_target == 0  # every error is <= 1: reached before training
    d = res[1]
    assert d.status == "diverged"
    assert all(n <= d.diverged_at for n in d.eval_steps)
    (none,) = train_group([ok], Record(every=5, metrics=("loss", "train_error")), threads=1)
    assert none.steps_to_target is None  # no target asked for


def test_unit_states_at_init_and_end_equal_the_reference():
    # bias -3 kills some ReLU units; ELU's derivative reads its output, leaky ReLU never dies.
    cs = [Config(activation=a, bias_init=b, seed=s, lr=0.01, optimiser="adam", **SMALL)
          for a in ("relu", "elu", "leaky_relu") for b in (0.0, -3.0) for s in (0, 1)]
    res = train_group(cs, Record(every=25, metrics=("loss", "unit_states")), dtype=F64, threads=2)
    d = load_data("digits", dtype=F64)
    seen_dead = False
    for c, r in zip(cs, res):
        init = _units(reference_model(c, d.in_features, d.n_classes, dtype=F64), c, d.x_train)
        end = _units(train_reference(c, dtype=F64)[1], c, d.x_train)
        assert (r.final["dead_on_data_init"], r.final["off_units_init"]) == pytest.approx(init, abs=1e-12)
        assert (r.final["dead_on_data"], r.final["off_units"]) == pytest.approx(end, abs=1e-12)
        seen_dead |= r.final["dead_on_data"] > 0
        if c.activation == "leaky_relu":
            assert r.final["dead_on_data"] == 0.0
    assert seen_dead


def test_maxout_unit_states_count_pieces():
    c = Config(activation="maxout", activation_params={"pieces": 2}, bias_init=-3.0, seed=0, lr=0.05, **SMALL)
    (r,) = train_group([c], Record(every=25, metrics=("loss", "unit_states")), threads=1)
    assert 0.0 <= r.final["dead_on_data"] <= 1.0 and 0.0 <= r.final["off_units_init"] <= 1.0


@pytest.mark.parametrize("init, gain, act", [("xavier_normal", "auto", "tanh"), ("he_normal", None, "leaky_relu"),
                                             ("lecun_normal", 1.5, "selu"), ("orthogonal", None, "relu"),
                                             ("torch_default", None, "relu"), ("rai", None, "relu"),
                                             ("normal", None, "sigmoid")])
def test_init_is_the_labs(init, gain, act):
    kw = {} if gain is None else {"gain": gain}
    if init == "normal":
        kw["std"] = 0.3
    c = validate_config({"activation": act, "init": init, "init_args": kw, "bias_init": -0.5, "seed": 4, **SMALL})
    got = init_params(c, 64, 10)
    model = MLP(64, 10, depth=2, width=16, activation=act)
    init_weights(model, init, bias=-0.5, seed=4, **kw)
    want = [(m.weight, m.bias) for m in model.net if isinstance(m, torch.nn.Linear)]
    for (w, b), (w2, b2) in zip(got, want):
        assert torch.equal(w, w2) and torch.equal(b, b2)


def test_init_aliases_and_global_rng_untouched():
    before = torch.get_rng_state()
    he = init_params(Config(init="he", seed=1, **SMALL), 64, 10)
    assert torch.equal(torch.get_rng_state(), before)
    same = init_params(Config(init="he_normal", seed=1, **SMALL), 64, 10)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(he, same))
    # The architecture's template model is re-initialised per call: nothing carries over.
    for other in ("zeros", "torch_default", "rai"):
        init_params(Config(init=other, bias_init="torch", seed=2, **SMALL), 64, 10)
        again = init_params(Config(init="he", seed=1, **SMALL), 64, 10)
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(he, again))
    # He's gain reads the leaky slope: sqrt(2 / (1 + a^2)) / sqrt(fan_in)
    w = init_params(Config(activation="leaky_relu", activation_params={"negative_slope": 0.5}, init="he",
                           width=512, depth=2, seed=0), 512, 10)[1][0]
    assert float(w.std()) == pytest.approx((2 / 1.25 / 512) ** 0.5, rel=0.02)


def test_spec_fields_validate_and_keep_old_hashes():
    c = validate_config({"activation": "relu", "init": "xavier_normal", "init_args": {"gain": "AUTO"}})
    assert c.init_args == {"gain": "auto"} and c.to_dict()["init_args"] == {"gain": "auto"}
    assert "init_args" not in Config().to_dict()  # absent at its default: older hashes hold
    for bad, match in (({"gain": "big"}, "init_args.gain"), ({"stdev": 1}, "unknown key 'stdev'"),
                       ({"mode": "sideways"}, "init_args.mode"), ({"std": -1}, "init_args.std")):
        with pytest.raises(SpecError, match=match):
            validate_config({"init_args": bad})
    with pytest.raises(SpecError, match="constant"):
        validate_config({"init": "constant"})
    const = init_params(validate_config({"init": "constant", "init_args": {"value": 0.05}, **SMALL}), 64, 10)
    assert all(bool((w == 0.05).all()) for w, _ in const)
    spec = parse_spec({"axes": {"lr": 0.1}, "record": {"metrics": ["loss", "train_error"], "target_error": 0.05,
                                                       "first": 19, "every": 20}})
    assert spec.record.target_error == 0.05 and spec.record.first == 19
    plain = parse_spec({"axes": {"lr": 0.1}})
    assert "target_error" not in plain.to_dict()["record"] and "first" not in plain.to_dict()["record"]
    with pytest.raises(SpecError, match="record.metrics"):
        parse_spec({"axes": {"lr": 0.1}, "record": {"metrics": ["nope"]}})


def test_keep_params_rebuilds_the_trained_lab_model_and_train_configs_mixes_shapes():
    cs = [Config(activation="tanh", seed=s, lr=0.1, **{**SMALL, "depth": d}) for d in (1, 2) for s in (0, 1)]
    res = train_configs(cs[::-1], Record(every=25, keep_params=True), dtype=F64, threads=1)[::-1]
    d = load_data("digits", dtype=F64)
    for c, r in zip(cs, res):
        assert r.config == c
        model = lab_model(c, d.in_features, d.n_classes, r.params, dtype=F64)
        ref = train_reference(c, dtype=F64)[1]
        with torch.no_grad():
            assert torch.allclose(model(d.x_test), ref(d.x_test), atol=1e-10)
    assert train_group(cs[:1], Record(every=25))[0].params is None


def test_test_set_curves_end_at_the_final_metrics():
    cs = [Config(activation=a, seed=0, lr=0.1, **SMALL) for a in ("relu", "softsign")]
    for r in train_group(cs, Record(every=10, metrics=("loss", "test_loss", "test_error")), dtype=F64, threads=1):
        (n0, _), *_, (n, err) = r.curve("test_error")
        assert (n0, n) == (0, 25)
        assert err == pytest.approx(r.final["test_error"], abs=1e-12)
        assert r.curve("test_loss")[-1][1] == pytest.approx(r.final["test_loss"], rel=1e-9)
        # training metrics were not asked for: measured at the end only
        assert r.curve("train_error") == [(25, r.final["train_error"])] and "test_error" in r.records[0]
