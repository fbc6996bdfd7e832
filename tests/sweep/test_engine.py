"""The batched engine equals one-by-one training (same seed) and isolates diverging models."""

from __future__ import annotations

import math

import pytest
import torch

from actlab.activations import names
from actlab.sweep.engine import group_configs, train_group, train_reference
from actlab.sweep.spec import Config, Record

SMALL = dict(depth=2, width=16, steps=25, batch_size=32)


def _close(a: list[float] | torch.Tensor, b: list[float] | torch.Tensor, dtype: torch.dtype) -> bool:
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return bool(torch.allclose(a, b, rtol=tol, atol=tol))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("optimiser, lr", [("sgd", 0.1), ("momentum", 0.05), ("adam", 0.005)])
def test_equals_one_by_one(optimiser, lr, dtype):
    # Mixed activations in one stack: fused vjp (relu, tanh), derivative-only (elu, softsign),
    # input-derived (gelu), hyperparameters (leaky_relu); per-model lr and seeds.
    acts = ["relu", "tanh", "elu", "gelu", "softsign", "leaky_relu"]
    cs = [Config(activation=a, activation_params={"negative_slope": 0.2} if a == "leaky_relu" else {},
                 seed=i, lr=lr * (1 + 0.5 * (i % 2)), optimiser=optimiser, init="xavier" if i % 3 else "he",
                 bias_init=0.1 if i % 2 else "torch", **SMALL)
          for i, a in enumerate(acts)]
    res = train_group(cs, Record(every=10), dtype=dtype, threads=1)
    for c, r in zip(cs, res):
        ref_losses, model = train_reference(c, dtype=dtype)
        assert r.config == c and r.status == "done"
        assert _close(r.losses, ref_losses, dtype), (c.activation, (torch.tensor(r.losses, dtype=dtype) - ref_losses).abs().max())
        # final metrics computed from the engine's weights match the reference model's
        from actlab.sweep.engine import load_data

        d = load_data(c.data, c.preprocess, c.n, dtype)
        with torch.no_grad():
            ref_test = torch.nn.functional.cross_entropy(model(d.x_test), d.y_test).item()
        assert math.isclose(r.final["test_loss"], ref_test, rel_tol=1e-4)


def test_maxout_group_equals_one_by_one():
    cs = [Config(activation="maxout", activation_params={"pieces": 2}, seed=s, lr=0.05, **SMALL) for s in range(2)]
    for c, r in zip(cs, train_group(cs, dtype=torch.float64, threads=1)):
        assert _close(r.losses, train_reference(c, dtype=torch.float64)[0], torch.float64)


def test_threads_shards_and_group_mates_do_not_change_results():
    cs = [Config(activation=a, seed=s, lr=0.1, **SMALL) for a in ("relu", "tanh") for s in range(3)]
    alone = train_group(cs, threads=1)
    sharded = train_group(cs, threads=2)
    subset = train_group(cs[1:3], threads=1)
    for a, b in zip(alone, sharded):
        assert torch.allclose(torch.tensor(a.losses), torch.tensor(b.losses), atol=1e-6)
    for a, b in zip(alone[1:3], subset):
        assert torch.allclose(torch.tensor(a.losses), torch.tensor(b.losses), atol=1e-6)


def test_divergence_is_marked_and_isolated():
    ok = [Config(activation="relu", seed=s, lr=0.1, **SMALL) for s in range(3)]
    bad = Config(activation="relu", seed=3, lr=1e4, **SMALL)  # diverges within 25 steps
    rec = Record(every=5)
    mixed = train_group([ok[0], bad, ok[1], ok[2]], rec, threads=1)
    clean = train_group(ok, rec, threads=1)
    d = mixed[1]
    assert d.status == "diverged" and d.diverged and d.diverged_at is not None and d.stop_reason == "diverged"
    assert math.isnan(d.final["test_loss"]) and all(r["step"] <= d.diverged_at for r in d.records)
    assert len(d.losses) == d.steps_run == d.diverged_at + 1 and d.eval_steps == []
    for m, c in zip([mixed[0], mixed[2], mixed[3]], clean):
        assert m.status == "done"
        assert m.losses == c.losses
        assert m.final["test_loss"] == c.final["test_loss"]


def test_recorded_statistics():
    rec = Record(every=10, target_loss=1.5)
    dead, live = train_group([Config(activation="relu", bias_init=-50.0, seed=0, lr=0.1, **SMALL),
                              Config(activation="relu", seed=0, lr=0.1, **SMALL)], rec, threads=1)
    assert [r["step"] for r in live.records] == [0, 10, 20, 24]
    assert len(live.layers) == 4 * 3 and {r["layer"] for r in live.layers} == {0, 1, 2}
    assert dead.final["inactive"] == 1.0 and live.final["inactive"] < 0.5
    # every unit on ReLU's zero side: all inactive, none saturated (ReLU does not saturate)
    assert dead.records[0]["inactive"] == 1.0 and dead.records[0]["saturated"] == 0.0
    assert all(r["param_grad_norm"] > 0 for r in live.records)
    assert live.final["steps_to_batch_loss"] is not None and dead.final["steps_to_batch_loss"] is None
    assert live.steps_to_target is None  # no Record.target_error: no target
    assert 0.0 <= live.final["test_error"] <= 1.0
    (tanh,) = train_group([Config(activation="tanh", init="he", seed=0, lr=0.1, bias_init=0.0, **SMALL)],
                          Record(every=10, saturation_tol=0.5), threads=1)
    assert 0.0 < tanh.records[0]["saturated"] < 1.0


def test_group_configs_by_shape():
    cs = [Config(depth=d, activation=a, seed=s) for d in (1, 2) for a in ("relu", "tanh") for s in range(3)]
    chunks = group_configs(cs, chunk_size=4)
    assert sorted(len(c) for c in chunks) == [2, 2, 4, 4]
    assert all(len({c.shape_key for c in ch}) == 1 for ch in chunks)
    assert sorted(c.hash for ch in chunks for c in ch) == sorted(c.hash for c in cs)
    with pytest.raises(ValueError, match="one shape"):
        train_group(cs)


@pytest.mark.parametrize("optimiser, lr", [("sgd", 0.1), ("momentum", 0.05), ("adam", 0.01)])
def test_prelu_slopes_train_as_in_one_by_one(optimiser, lr):
    # PReLU's slope is learned per model and hidden layer, in a stack mixed with fixed activations.
    cs = [Config(activation="prelu", activation_params={"negative_slope": 0.1 + 0.2 * s}, seed=s, lr=lr,
                 optimiser=optimiser, **SMALL) for s in range(2)]
    cs += [Config(activation="relu", seed=5, lr=lr, optimiser=optimiser, **SMALL)]
    res = train_group(cs, Record(every=10), dtype=torch.float64, threads=1)
    for c, r in zip(cs, res):
        ref_losses, model = train_reference(c, dtype=torch.float64)
        assert _close(r.losses, ref_losses, torch.float64), (c.label, (torch.tensor(r.losses, dtype=torch.float64) - ref_losses).abs().max())
        slopes = [m.negative_slope.item() for m in model.modules() if hasattr(m, "negative_slope")]
        if c.activation == "prelu":
            got = [d["negative_slope"] for d in r.final["learned"]]
            assert got == pytest.approx(slopes, abs=1e-10)
            assert got != pytest.approx([c.activation_params["negative_slope"]] * len(got))  # they moved
        else:
            assert "learned" not in r.final and not slopes


def test_prelu_slope_curve_follows_the_record_steps():
    c = Config(activation="prelu", seed=1, lr=0.1, **SMALL)
    (r,) = train_group([c], Record(every=5, first=4), dtype=torch.float64, threads=1)
    curve = r.final["learned_curve"]
    assert [s for s, _ in curve] == [5, 10, 15, 20, 25]
    assert curve[-1][1] == r.final["learned"]  # the last record step is the last step


def test_maxout_without_params_gets_its_default_pieces():
    """The group size comes from the spec (its default where the config gives none), so layer
    sizes and the forward agree: maxout's layers emit width * 2 units by default."""
    from actlab.sweep.engine import layer_sizes

    c = Config(activation="maxout", seed=0, lr=0.05, **SMALL)
    assert layer_sizes(c, 4, 3)[0] == (4, 2 * SMALL["width"])
    assert layer_sizes(Config(activation="maxout", activation_params={"pieces": 3}, **SMALL), 4, 3)[0] == (4, 48)
    (res,) = train_group([c], dtype=torch.float64, threads=1)
    assert _close(res.losses, train_reference(c, dtype=torch.float64)[0], torch.float64)


@pytest.mark.parametrize("batch_size", [32, 500])  # iris: 3 batches an epoch, 24 examples dropped; full batch
@pytest.mark.parametrize("optimiser, lr", [("sgd", 0.1), ("momentum", 0.05), ("adam", 0.01)])
def test_engine_trains_what_lab_train_trains(batch_size, optimiser, lr):
    # One run contract: Config.train_config() given to lab.train, on the lab's MLP from the
    # engine's kept initial weights, is the engine's run: losses step by step over 8 epochs
    # (the lab's batch order), trained weights (PReLU's slope included) and final metrics.
    from actlab.lab.train import train as lab_train
    from actlab.sweep.engine import init_params, lab_model, load_data

    F64 = torch.float64
    cs = [Config(activation=a, data="iris", depth=2, width=8, steps=25, batch_size=batch_size, optimiser=optimiser,
                 lr=lr, seed=i) for i, a in enumerate(("relu", "tanh", "prelu"))]
    data = load_data("iris", dtype=F64)
    for c, r in zip(cs, train_group(cs, Record(every=10, keep_params=True), dtype=F64, threads=1)):
        for (w0, b0), (w1, b1) in zip(r.params_init, init_params(c, data.in_features, data.n_classes, F64)):
            assert torch.equal(w0, w1) and torch.equal(b0, b1)
        model = lab_model(c, data.in_features, data.n_classes, r.params_init, dtype=F64)
        lab = lab_train(model, data, c.train_config())
        assert lab.steps_run == c.steps and not lab.diverged
        lab_losses = torch.tensor(lab.losses, dtype=F64)
        assert _close(r.losses, lab_losses, F64), (c.label, (torch.tensor(r.losses, dtype=F64) - lab_losses).abs().max())
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        for (w, b), lin in zip(r.params, linears):
            assert torch.allclose(w, lin.weight, atol=1e-10) and torch.allclose(b, lin.bias, atol=1e-10)
        if c.activation == "prelu":
            slopes = [float(p.detach()) for n, p in model.named_parameters() if not n.endswith((".weight", ".bias"))]
            assert len(slopes) == c.depth
            assert slopes == pytest.approx([v for d in r.final["learned"] for v in d.values()], abs=1e-10)
        for key in ("train_loss", "train_error", "test_loss", "test_error"):
            assert r.final[key] == pytest.approx(lab.final[key], rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("name", names())
def test_every_activation_trains_in_the_engine_as_in_lab_train(name):
    # The run contract over the whole registry (a new activation is covered without an edit).
    # RReLU, whose training forward draws random slopes, trains in the engine at its mean slope
    # (its eval form, deterministic per seed): lab.train of leaky ReLU at that slope.
    from actlab.lab.train import train as lab_train
    from actlab.sweep.engine import lab_model, load_data

    F64 = torch.float64
    c = Config.from_dict(dict(activation=name, data="iris", depth=2, width=8, steps=10, batch_size=32, lr=0.05))
    (r,) = train_group([c], Record(every=5, keep_params=True), dtype=F64, threads=1)
    data = load_data("iris", dtype=F64)
    twin = c
    if name == "rrelu":
        p = c.activation_params
        twin = Config.from_dict({**c.to_dict(), "activation": "leaky_relu",
                                 "activation_params": {"negative_slope": (p["lower"] + p["upper"]) / 2}})
    lab = lab_train(lab_model(twin, data.in_features, data.n_classes, r.params_init, dtype=F64), data,
                    c.train_config())
    lab_losses = torch.tensor(lab.losses, dtype=F64)
    assert _close(r.losses, lab_losses, F64), (name, (torch.tensor(r.losses, dtype=F64) - lab_losses).abs().max())


def test_one_result_type_one_steps_to_target():
    # lab.train and the engine return the same type with the same keys, and steps_to_target means
    # one thing in both: steps done at the first evaluation whose training error met the target.
    import dataclasses

    from actlab.lab.train import TrainResult
    from actlab.lab.train import train as lab_train
    from actlab.sweep.engine import lab_model, load_data

    F64 = torch.float64
    c = Config(activation="relu", seed=0, lr=0.1, depth=2, width=16, steps=100, batch_size=32)
    (r,) = train_group([c], Record(every=10, first=9, metrics=("loss", "train_error"), target_error=0.3,
                                   keep_params=True), dtype=F64, threads=1)
    data = load_data(c.data, dtype=F64)
    tc = dataclasses.replace(c.train_config(), target_metric="train_error<=0.3", eval_every=10)
    lab = lab_train(lab_model(c, data.in_features, data.n_classes, r.params_init, dtype=F64), data, tc)
    assert type(r) is type(lab) is TrainResult
    assert r.steps_to_target is not None and r.steps_to_target == lab.steps_to_target
    assert 0 < r.steps_to_target < c.steps and lab.stop_reason == "target" and r.stop_reason == "steps"
    # the same evaluations up to the target: steps done and training errors
    k = lab.eval_steps.index(lab.steps_to_target) + 1
    assert r.eval_steps[:k] == lab.eval_steps and r.eval_steps[-1] == c.steps == r.steps_run
    assert r.train_error[:k] == pytest.approx(lab.train_error, abs=1e-12)
    assert r.train_error[-1] == r.final["train_error"] and r.final["step"] == c.steps
    assert all(math.isnan(v) for v in r.test_error[:-1]) and not math.isnan(r.test_error[-1])  # not asked for
    assert set(r.to_dict()) == set(lab.to_dict())
    # the batch-loss crossing has its own name
    assert "steps_to_batch_loss" in r.final and "steps_to_target" not in r.final
