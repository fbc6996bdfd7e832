"""Training: determinism, divergence as a result, target stop, losses, callbacks and the probe."""

from __future__ import annotations

import json
import math

import pytest
import torch

from actlab.lab.data import load_dataset, load_sequence_task
from actlab.lab.init import init_weights
from actlab.lab.models import MLP, RNNModel
from actlab.lab.train import METRICS, Callback, EpochBatches, TrainConfig, TrainError, train


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def moons():
    return load_dataset("moons", n=256, seed=0)


def _model(seed: int = 0, **kw) -> MLP:
    args = {"depth": 2, "width": 16, "activation": "tanh", **kw}
    return init_weights(MLP(2, 2, **args), "xavier_normal", seed=seed)


def test_same_seed_gives_identical_numbers(moons) -> None:
    cfg = TrainConfig(optimiser="momentum", lr=0.05, batch_size=32, steps=60, eval_every=20, seed=7)
    a = train(_model(dropout=0.2), moons, cfg)
    b = train(_model(dropout=0.2), moons, cfg)
    assert a.losses == b.losses and a.train_error == b.train_error and a.test_loss == b.test_loss
    c = train(_model(dropout=0.2), moons, TrainConfig(**{**cfg.to_dict(), "seed": 8}))
    assert c.losses != a.losses
    assert len(a.losses) == a.steps_run == 60 and a.eval_steps == [0, 20, 40, 60]
    assert not a.diverged and a.stop_reason == "steps" and a.final["step"] == 60


def test_training_leaves_the_global_rng_alone(moons) -> None:
    model = _model(dropout=0.5)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    train(model, moons, TrainConfig(steps=5))
    assert torch.equal(torch.rand(3), expected)


def test_it_learns(moons) -> None:
    r = train(_model(), moons, TrainConfig(optimiser="adam", lr=0.02, steps=300, eval_every=100))
    assert r.train_error[-1] < 0.2 < r.train_error[0] + 0.2 and r.losses[-1] < r.losses[0]
    assert set(r.final) == {"step", *METRICS}  # one vocabulary: losses and errors


def test_divergence_is_a_result_not_a_crash(moons) -> None:
    r = train(_model(activation="relu"), moons, TrainConfig(lr=1e8, steps=200, eval_every=50, check_every=10))
    assert r.diverged and r.stop_reason == "diverged"
    k = r.diverged_at
    assert k is not None and k < 200 and r.steps_run <= k + 10
    assert not math.isfinite(r.losses[k]) and all(math.isfinite(v) for v in r.losses[:k])
    assert r.summary() == f"diverged at step {k}"
    json.dumps(r.to_dict())  # NaN/Inf become null, so the result stores as JSON


def test_target_metric_stops_the_run(moons) -> None:
    cfg = TrainConfig(optimiser="adam", lr=0.05, steps=2000, eval_every=10, target_metric="train_error<=0.15")
    r = train(_model(), moons, cfg)
    assert r.steps_to_target is not None and r.stop_reason == "target" and r.reached_target
    assert r.steps_run == r.steps_to_target < 2000 and r.train_error[-1] <= 0.15
    assert all(e > 0.15 for e in r.train_error[:-1])
    r2 = train(_model(), moons, TrainConfig(optimiser="adam", lr=0.05, steps=2000, eval_every=10,
                                             target_metric="train_error", target=0.15))
    assert r2.steps_to_target == r.steps_to_target
    never = train(_model(), moons, TrainConfig(lr=1e-6, steps=20, eval_every=10, target_metric="train_error<0"))
    assert never.steps_to_target is None and never.steps_run == 20


@pytest.mark.parametrize("loss,out", [("ce", 2), ("bce", 2), ("bce", 1), ("mse", 2)])
def test_losses_for_classification(moons, loss: str, out: int) -> None:
    m = init_weights(MLP(2, out, depth=1, width=16, activation="relu"), "he_normal", seed=0)
    r = train(m, moons, TrainConfig(loss=loss, optimiser="adam", lr=0.02, steps=150, batch_size=None,
                                    eval_every=150))
    assert r.config["loss"] == loss and r.train_error[-1] < 0.3 and r.losses[-1] < r.losses[0]


def test_regression_sequence_task_with_mse_and_full_sequence_output() -> None:
    data = load_sequence_task("adding", length=8, n=128, seed=0)
    m = RNNModel("lstm", 2, 16, 1, return_sequence=True)
    r = train(m, data, TrainConfig(optimiser="adam", lr=0.01, steps=60, batch_size=32, eval_every=30,
                                   clip_grad_norm=1.0))
    assert r.config["loss"] == "mse" and math.isnan(r.train_error[-1])
    assert r.train_loss[-1] < r.train_loss[0]
    with pytest.raises(TrainError, match="use 'mse'"):
        train(m, data, TrainConfig(loss="ce", steps=1))


def test_cnn_on_images() -> None:
    from actlab.lab.models import SmallCNN

    digits = load_dataset("digits", flatten=False, n=256, preprocess="centre")
    m = init_weights(SmallCNN(1, 10, image_size=8), "he_normal", seed=0)
    r = train(m, digits, TrainConfig(optimiser="adam", lr=0.01, steps=40, batch_size=32, eval_every=20))
    assert r.eval_steps == [0, 20, 40] and r.train_loss[-1] < r.train_loss[0] and not r.diverged


def test_full_batch_and_epochs(moons) -> None:
    r = train(_model(), moons, TrainConfig(batch_size=None, epochs=3, eval_every=1000))
    assert r.steps_run == 3
    r = train(_model(), moons, TrainConfig(batch_size=64, epochs=2, eval_every=1000))
    assert r.steps_run == 8


def test_callbacks_see_gradients_and_can_stop(moons) -> None:
    class Recorder(Callback):
        def __init__(self) -> None:
            self.grad_norms: list[float] = []
            self.ends = 0

        def on_after_backward(self, step, model, loss) -> None:
            self.grad_norms.append(float(model.output_layer.weight.grad.norm()))

        def on_end(self, model, result) -> None:
            self.ends += 1

    rec = Recorder()
    seen: list[int] = []

    def stop_at_40(step, model, metrics):
        seen.append(step)
        return step >= 40

    r = train(_model(), moons, TrainConfig(steps=200, eval_every=20), callbacks=[rec, stop_at_40])
    assert r.steps_run == 40 and r.stop_reason == "callback" and seen == [0, 20, 40]
    assert len(rec.grad_norms) == 40 and all(g > 0 for g in rec.grad_norms) and rec.ends == 1


def test_probe_is_entered_around_the_loop_and_does_not_change_numbers(moons) -> None:
    class Probe:
        def __init__(self) -> None:
            self.events: list[str] = []

        def __enter__(self):
            self.events.append("enter")
            return self

        def __exit__(self, *exc) -> None:
            self.events.append("exit")

    p = Probe()
    cfg = TrainConfig(steps=30, eval_every=10)
    with_probe = train(_model(), moons, cfg, probe=p)
    assert p.events == ["enter", "exit"]
    assert with_probe.losses == train(_model(), moons, cfg).losses


def test_real_probe_counts_every_step_and_keeps_the_numbers(moons) -> None:
    probe_mod = __import__("actlab.probe", fromlist=["Probe"])
    cfg = TrainConfig(steps=30, eval_every=10)
    model = _model(activation="relu")
    probe = probe_mod.Probe(model)
    watched = train(model, moons, cfg, probe=probe)
    assert probe.current_step == 29  # evaluations run in eval mode and are not counted as steps
    assert watched.losses == train(_model(activation="relu"), moons, cfg).losses


def test_config_errors_name_the_choices() -> None:
    with pytest.raises(TrainError, match="valid: sgd, momentum, adam"):
        TrainConfig(optimiser="rmsprop")
    with pytest.raises(TrainError, match="valid: ce, bce, mse"):
        TrainConfig(loss="hinge")
    with pytest.raises(TrainError, match="unknown target metric"):
        TrainConfig(target_metric="val_error<=0.1")
    with pytest.raises(TrainError, match="needs target="):
        TrainConfig(target_metric="train_error")
    with pytest.raises(TrainError, match="lr must be a positive number"):
        TrainConfig(lr=0)


def test_threads_option_is_restored(moons) -> None:
    before = torch.get_num_threads()
    train(_model(), moons, TrainConfig(steps=3, threads=1))
    assert torch.get_num_threads() == before


def test_epoch_batches_are_permutations_with_the_remainder_dropped() -> None:
    b = EpochBatches(10, 3, seed=4)
    assert (b.batch_size, b.per_epoch, b.full) == (3, 3, False)
    steps = b.take(6)  # two epochs of three batches; one example left out of each
    for epoch in (steps[:3], steps[3:]):
        seen = epoch.flatten()
        assert len(set(seen.tolist())) == 9 and int(seen.max()) < 10
    assert not torch.equal(steps[:3], steps[3:])  # a fresh permutation each epoch
    assert torch.equal(EpochBatches(10, 3, seed=4).take(6), steps)  # the seed fixes the order
    assert not torch.equal(EpochBatches(10, 3, seed=5).take(6), steps)
    full = EpochBatches(10, 64, seed=4)
    assert full.full and torch.equal(full.take(2), torch.arange(10).repeat(2, 1))  # in order, no draw
    assert EpochBatches(10, None, seed=0).full
    with pytest.raises(TrainError, match="n=0"):
        EpochBatches(0, 3, seed=0)


def test_accuracy_is_not_a_metric_name() -> None:
    with pytest.raises(TrainError, match="unknown target metric 'test_accuracy'.*train_error"):
        TrainConfig(target_metric="test_accuracy>=0.9")


def test_epoch_batches_take_equals_steps_of_next() -> None:
    a, b = EpochBatches(50, 7, seed=2), EpochBatches(50, 7, seed=2)
    blocks = torch.cat([a.take(5), a.take(1), a.take(13)])  # blocks straddle epochs of 7 batches
    assert torch.equal(blocks, torch.stack([b.next() for _ in range(19)]))
