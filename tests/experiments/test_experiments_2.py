"""Experiment-specific checks for the lab's experiments of order 90-160 (the generic tiny-run test is in
test_experiments.py): the helpers they measure with, and their decision rules on hand-made numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from actlab.experiments import get_experiment
from actlab.experiments.dead_vs_dropout import DropoutMasks, jaccard
from actlab.experiments.linear_collapse import collapse
from actlab.experiments.lstm_vs_rnn import build, gradient_ratio
from actlab.experiments.maxout import as_maxout, hidden_parameters
from actlab.experiments.prelu_learns_slopes import moved
from actlab.experiments.step_not_trainable import HiddenGradients
from actlab.experiments.zero_mean_input import same_sign_share
from actlab.lab.init import init_weights
from actlab.lab.models import MLP

MINE = ["linear_collapse", "maxout", "step_not_trainable", "init_depth30", "prelu_learns_slopes", "lstm_vs_rnn",
        "zero_mean_input", "dead_vs_dropout"]


def test_registered_in_order():
    orders = [get_experiment(n).order for n in MINE]
    assert orders == sorted(orders) == list(range(90, 170, 10))


def test_identity_mlp_is_one_affine_map():
    torch.manual_seed(0)
    m = MLP(3, 4, depth=5, width=7, activation="identity")
    init_weights(m, "xavier_normal", bias="normal", bias_value=0.3, seed=1)
    w, b = collapse(m)
    x = torch.randn(20, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(m.double()(x), x @ w.T + b, atol=1e-12)
    assert w.shape == (4, 3)


@pytest.mark.parametrize("act, slope", [("relu", 0.0), ("leaky_relu", 0.01)])
def test_maxout_copy_equals_relu_and_leaky_relu(act, slope):
    m = MLP(5, 3, depth=2, width=6, activation=act)
    init_weights(m, "he_normal", bias="normal", bias_value=0.5, seed=0)
    x = torch.randn(50, 5)
    with torch.no_grad():
        assert torch.allclose(m(x), as_maxout(m, slope)(x), atol=1e-6)
    assert hidden_parameters(as_maxout(m, slope)) == 2 * hidden_parameters(m)


def test_step_net_gets_no_hidden_gradient():
    for act, zero in (("step", True), ("sigmoid", False)):
        m = MLP(2, 2, depth=2, width=8, activation=act)
        init_weights(m, "xavier_normal", bias="uniform", seed=0)
        rec = HiddenGradients(m)
        loss = torch.nn.functional.cross_entropy(m(torch.randn(16, 2)), torch.randint(0, 2, (16,)))
        loss.backward()
        rec.on_after_backward(0, m, loss)
        assert (rec.largest == 0.0) is zero
        assert m.output_layer.weight.grad.abs().sum() > 0  # the read-out above the steps still learns


def test_same_sign_share():
    assert same_sign_share(torch.tensor([[1.0, 2.0, 3.0, 0.0]])) == 1.0
    assert same_sign_share(torch.tensor([[1.0, -2.0, 3.0, -4.0], [1.0, 1.0, 1.0, -1.0]])) == pytest.approx(0.625)
    # rows with fewer than two nonzero components are skipped
    assert same_sign_share(torch.tensor([[0.0, 0.0, 5.0], [1.0, -1.0, 1.0]])) == pytest.approx(2 / 3)


def test_dropout_masks_overlap_like_independent_draws():
    assert math.isnan(jaccard(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)))
    assert jaccard(torch.tensor([True, True, False]), torch.tensor([True, False, True])) == pytest.approx(1 / 3)
    m = MLP(4, 2, depth=1, width=200, activation="identity", dropout=0.5)
    rec = DropoutMasks(m)
    m.train()
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    for _ in range(5):
        m(x)
    rec.remove()
    assert len(rec.jaccards) == 4
    assert sum(rec.jaccards) / 4 == pytest.approx(1 / 3, abs=0.02)
    assert rec.comeback_share() > 0.99


def test_rnn_gradient_through_time_shrinks_with_length():
    rnn = build("rnn", 8, 1.0, seed=0)
    assert gradient_ratio(rnn, 30, 16, seed=0) < gradient_ratio(rnn, 5, 16, seed=0) < 1.0


def test_moved_check():
    assert moved("m", [0.6, 0.62, 0.58], 0.25, 0.05).state == "pass"
    assert moved("m", [0.25, 0.26, 0.24], 0.25, 0.05).state == "fail"
    assert moved("m", [0.0, 0.6], 0.25, 0.05).state == "unclear"


def _depth30(he_escape: list, xavier_escape: list, he_drop: list[float] | None = None) -> dict:
    arms = ["ReLU, He normal", "ReLU, Xavier normal", "ReLU, N(0, 0.01^2)", "tanh, Xavier normal"]
    n = {"arms": arms, "first_grad": {a: [0.5, 0.6, 0.7] for a in arms}, "steps": 1000,
         "loss_drop": {a: [0.3, 0.35, 0.4] for a in arms}, "escape": {a: [20, 30, 40] for a in arms},
         "decades": 3.0, "stall": 0.05, "profile": {a: [[0.5] * 31] * 3 for a in arms}}
    n["first_grad"]["ReLU, N(0, 0.01^2)"] = [1e-35, 2e-35, 1.5e-35]
    n["loss_drop"]["ReLU, N(0, 0.01^2)"] = [1e-5, 2e-5, 1e-5]
    n["escape"]["ReLU, N(0, 0.01^2)"] = [None, None, None]
    n["escape"]["ReLU, He normal"], n["escape"]["ReLU, Xavier normal"] = he_escape, xavier_escape
    if he_drop is not None:
        n["loss_drop"]["ReLU, He normal"] = he_drop
    return n


def test_init_depth30_rule_is_he_et_al_s_xavier_stall():
    exp = get_experiment("init_depth30")
    v = exp.decide(_depth30([20, 30, 20], [None, 640, None]))  # Xavier: 2 of 3 never leave the plateau
    assert v.status == "confirmed"
    assert "still on the plateau" in v.reason and "2 of 3 seeds" in v.reason
    assert v.sanity and all(c.role == "sanity" for c in v.sanity)
    # Plausible other outcome: at a milder depth Xavier-ReLU leaves the plateau as soon as He: not confirmed.
    assert exp.decide(_depth30([40, 50, 60], [10, 15, 10])).status == "not confirmed"
    # He does not train on one seed: the rule's second clause does not hold.
    assert exp.decide(_depth30([20, 30, None], [None, None, None], he_drop=[0.3, 0.4, 0.01])).status != "confirmed"
    # The small init's stall no longer decides: make it train, the verdict stays.
    n = _depth30([20, 30, 20], [None, 640, None])
    n["loss_drop"]["ReLU, N(0, 0.01^2)"] = [0.3, 0.31, 0.29]
    assert exp.decide(n).status == "confirmed"


def test_prelu_rule_can_fail_when_slopes_are_flat_over_depth():
    exp = get_experiment("prelu_learns_slopes")
    n = {"depth": 4, "slope0": 0.25, "margin": 0.05, "slopes": [[0.95, 0.6, 0.5, 0.48], [1.0, 0.63, 0.58, 0.39],
                                                                  [0.89, 0.7, 0.47, 0.47]]}
    assert exp.decide(n).status == "confirmed"
    # Plausible: every layer learns about the same slope (moved from 0.25, no depth pattern).
    flat = {**n, "slopes": [[0.5, 0.52, 0.49, 0.51], [0.47, 0.5, 0.52, 0.5], [0.53, 0.49, 0.5, 0.49]]}
    v = exp.decide(flat)
    assert v.status == "inconclusive" and all(c.state == "pass" for c in v.sanity)


def test_maxout_rule_can_fail_and_identities_do_not_decide():
    exp = get_experiment("maxout")
    n = {"activations": ["relu", "leaky_relu", "maxout"], "pieces": 2, "exact_tol": 1e-5, "comparable": 0.97,
         "ratio_tol": 0.05, "max_abs_diff": {"relu": [0.0, 0.0], "leaky_relu": [2e-6, 3e-6]},
         "hidden_parameters": {"relu": 100, "leaky_relu": 100, "maxout": 200},
         "test_accuracy": {"relu": [0.97, 0.965, 0.968], "leaky_relu": [0.97] * 3, "maxout": [0.966, 0.97, 0.96]}}
    assert exp.decide(n).status == "confirmed"
    worse = {**n, "test_accuracy": {**n["test_accuracy"], "maxout": [0.90, 0.91, 0.905]}}  # overfits, say
    assert exp.decide(worse).status == "not confirmed"
    broken_copy = {**n, "max_abs_diff": {"relu": [1.0, 1.0], "leaky_relu": [1.0, 1.0]}}
    assert exp.decide(broken_copy).status == "confirmed"  # an identity shown apart, never deciding


def test_dying_relu_rule_can_fail_when_high_lr_kills_no_more():
    exp = get_experiment("dying_relu")
    acts = ["relu", "leaky_relu", "prelu", "elu"]
    none_died = [[0.0, 0.0, 0.0]] * 3  # per seed: share of each layer's units that died in training

    def arm(died: list[list[float]]) -> dict:
        return {"dead": [0.0] * 3, "died": died}

    n = {"activations": acts, "lrs": [0.01, 1.0], "bias": -3.0, "bias_lr": 0.01,
         "lr_sweep": {a: {"dead": [[0.0] * 3, [0.0] * 3], "died": [none_died, none_died]} for a in acts},
         "negative_bias": {a: arm(none_died) for a in acts}}
    n["lr_sweep"]["relu"] = {"dead": [[0.0] * 3, [0.4] * 3],
                             "died": [none_died, [[0.0, 0.4, 0.9], [0.0, 0.38, 0.95], [0.01, 0.35, 0.92]]]}
    n["negative_bias"]["relu"] = arm([[0.05, 0.1, 0.2], [0.06, 0.12, 0.18], [0.04, 0.11, 0.22]])
    v = exp.decide(n)
    assert v.status == "confirmed" and len(v.sanity) == 2  # leaky ReLU and PReLU: dead by definition never
    # Plausible: a high lr that the net survives, a unit or two dying either way (as plain SGD at lr 0.6 did).
    few = [[0.0, 0.0, 0.016], [0.0, 0.016, 0.0], [0.0, 0.0, 0.0]]
    same = {**n, "lr_sweep": {**n["lr_sweep"], "relu": {"dead": [[0.0] * 3] * 2, "died": [few, few]}}}
    assert exp.decide(same).status != "confirmed"


def test_dying_relu_compares_the_highest_lr_that_kept_every_run_finite():
    from actlab.experiments.dying_relu import highest_stable

    assert highest_stable([0.01, 0.3, 1.0, 2.0], [[False] * 3, [False] * 3, [True, False, True], [True] * 3]) == 1
    assert highest_stable([0.01, 1.0], [[True], [True]]) is None
    exp = get_experiment("dying_relu")
    acts = ["relu", "leaky_relu", "prelu", "elu"]
    none_died = [[0.0, 0.0, 0.0]] * 3
    died = [[0.0, 0.4, 0.9], [0.0, 0.38, 0.95], [0.01, 0.35, 0.92]]
    nb = [[0.05, 0.1, 0.2], [0.06, 0.12, 0.18], [0.04, 0.11, 0.22]]

    def sweep(per_lr: list, div: list) -> dict:
        return {"dead": [[0.0] * 3] * len(per_lr), "died": per_lr, "diverged": div}

    ok, bad = [False] * 3, [True] * 3
    n = {"activations": acts, "lrs": [0.01, 0.5, 2.0], "bias": -3.0, "bias_lr": 0.01,
         "lr_sweep": {a: sweep([none_died, none_died, [None] * 3], [ok, ok, bad]) for a in acts},
         "negative_bias": {a: {"dead": [0.0] * 3, "died": none_died, "diverged": ok} for a in acts}}
    n["lr_sweep"]["relu"] = sweep([none_died, died, [None] * 3], [ok, ok, bad])
    n["negative_bias"]["relu"]["died"] = nb
    v = exp.decide(n)  # lr 2 diverged on every seed: the rule compares lr 0.5 with lr 0.01, not "no finite value"
    assert v.status == "confirmed" and "lr 0.5 (the highest lr with no diverged run)" in v.checks[0].description
    assert "lr 2 3/3" in v.reason  # the diverged runs are reported
    assert exp.decide(exp.counterfactual(n)).status != "confirmed"  # leaky ReLU's units in ReLU's place
    # Plausible: units die only where training blows up; at the highest stable lr none die: not confirmed.
    n["lr_sweep"]["relu"] = sweep([none_died, none_died, [None] * 3], [ok, ok, bad])
    assert exp.decide(n).status != "confirmed"
    # A high lr where one seed of three diverged is not the "high lr" of the rule.
    n["lr_sweep"]["relu"] = sweep([none_died, died, [None] * 3], [ok, [False, True, False], bad])
    assert "no learning rate above the lowest" in exp.decide(n).reason


def test_same_seed_same_numbers():
    exp = get_experiment("step_not_trainable")
    s = {**exp.settings("tiny"), "steps": 20, "seeds": [3]}
    assert exp.measure(s, lambda f, m: None) == exp.measure(s, lambda f, m: None)


def _saturation(top_means: list[float]) -> dict:
    """Two sigmoid seeds, measurements at steps 0, 50, 100: layer means, the top one given per step."""
    run = [[0.5, 0.5, 0.5, top_means[0]], [0.5, 0.52, 0.6, top_means[1]], [0.5, 0.53, 0.62, top_means[2]]]
    run2 = [[0.51, 0.5, 0.49, top_means[0] + 0.01], [0.5, 0.51, 0.61, top_means[1] + 0.01],
            [0.49, 0.52, 0.63, top_means[2] + 0.01]]
    return {"activations": ["sigmoid"], "depth": 4, "low": 0.1, "early": 0.5, "steps": 100,
            "watch_steps": [0, 50, 100], "mean": {"sigmoid": [run, run2]}}


def test_top_layer_saturation_rule_can_fail_without_early_saturation():
    exp = get_experiment("top_layer_saturation")
    assert exp.decide(_saturation([0.5, 0.05, 0.04])).status == "confirmed"
    # Plausible: the top layer drifts down but not to 0 (as a narrower net does in a short run).
    assert exp.decide(_saturation([0.5, 0.3, 0.2])).status != "confirmed"


def _output_loss(mse_steps: list[float]) -> dict:
    """Numbers shaped like output_loss's measure(): one task, two lrs, three seeds."""
    xe_steps = [[3.0, 3.3, 2.8], [1.5, 1.7, 1.4]]
    seeds = lambda v: [v, v * 1.1, v * 0.9]  # noqa: E731
    return {"tasks": ["binary"], "lrs": [1.0, 3.0], "steps": 200, "factor": {"binary": 4.0},
            "fix_steps": {"binary": {"mse": [seeds(v) for v in mse_steps], "bce": xe_steps}},
            "autograd_gap": {"binary": {"mse": [1e-17] * 3, "bce": [0.0] * 3}},
            "wrong_grad": {"binary": {"mse": [0.01, 0.012, 0.009], "bce": [0.98, 0.99, 0.985]}}}


def test_output_loss_rule_reads_the_confidently_wrong_examples_and_can_fail():
    exp = get_experiment("output_loss")
    assert exp.decide(_output_loss([20.0, 10.0])).status == "confirmed"
    # Plausible (a milder start, |z| ~ 2, where sigma' is not small): at the larger lr squared error
    # fixes the wrong examples as fast as cross-entropy, and the rule, which asks it at every lr, fails.
    v = exp.decide(_output_loss([20.0, 1.5]))
    assert v.status != "confirmed" and [c.state for c in v.checks][0] == "pass"
    # The sanity checks never decide: a failing autograd comparison leaves the verdict as it is.
    n = _output_loss([20.0, 10.0])
    n["autograd_gap"]["binary"]["mse"] = [1.0] * 3
    assert exp.decide(n).status == "confirmed"


SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / ".." / "shared" / "data"


def _data_dir() -> Path | None:
    import os

    for cand in (os.environ.get("ACTLAB_TEST_DATA"), os.environ.get("ACTLAB_DATA"), "/work/shared/data", SHARED_DATA):
        if cand and (Path(cand) / "mnist").is_dir():
            return Path(cand)
    return None


def test_an_experiment_on_missing_real_data_says_so(monkeypatch, tmp_path):
    from actlab.experiments.runner import run_experiment

    monkeypatch.setenv("ACTLAB_DATA", str(tmp_path))
    r = run_experiment("top_layer_saturation", "tiny", overrides={"data": "mnist"})
    assert r.verdict.status == "inconclusive" and r.verdict.reason.startswith("not run: mnist files")
    assert "ACTLAB_DATA" in r.verdict.reason and r.error is None


def test_top_layer_saturation_runs_on_mnist(monkeypatch, tmp_path):
    from actlab.experiments.runner import run_experiment, write_outputs

    root = _data_dir()
    if root is None:
        pytest.skip("MNIST not found (set ACTLAB_DATA)")
    monkeypatch.setenv("ACTLAB_DATA", str(root))
    r = run_experiment("top_layer_saturation", "tiny", overrides={"data": "mnist", "n_train": 1000, "steps": 40})
    assert r.error is None, r.error
    assert r.numbers["mean"]["sigmoid"][0][0][0] == pytest.approx(0.5, abs=0.05)  # sigmoid's mean at init
    meta = json.loads(write_outputs([r], tmp_path)["json"].read_text())
    files = meta["provenance"]["data files"]["mnist"]
    assert files["train-images-idx3-ubyte"]["status"] == "ok"


def _dead(revived2: list[int], ever2: list[int]) -> dict:
    return {"p": 0.5, "expected": 1 / 3, "dead_fraction": [0.05, 0.06, 0.05], "min_dead": 0.02,
            "dead_jaccard": [0.95, 0.96, 0.94], "dropout_jaccard": [0.333, 0.334, 0.333], "revived": [0.0] * 3,
            "comeback": [1.0] * 3, "revive_max": 0.5, "expected_tol": 0.05, "comeback_min": 0.99,
            "revived_per_layer": [[0, r] for r in revived2], "ever_dead_per_layer": [[0, e] for e in ever2],
            "dead_per_layer": [[0, e - r] for r, e in zip(revived2, ever2)], "units": 256}


def test_dead_vs_dropout_rule_reads_the_deeper_layers_and_can_fail():
    exp = get_experiment("dead_vs_dropout")
    assert exp.decide(_dead([0, 1, 0], [40, 45, 50])).status == "confirmed"
    assert exp.decide(_dead([5, 6, 7], [40, 45, 50])).status == "confirmed"  # 13% revive: most stay dead
    # Plausible (layer 2's inputs keep moving as layer 1 trains, e.g. with momentum at a high lr): most of
    # its dead units come back, as dropout's do.
    assert exp.decide(_dead([30, 32, 36], [40, 45, 50])).status == "not confirmed"
    # Layer 1 is not read by the rule (its inputs are fixed: an identity): revivals there change nothing.
    n = _dead([0, 1, 0], [40, 45, 50])
    n["revived_per_layer"] = [[r1, r2] for (_, r2), r1 in zip(n["revived_per_layer"], [40, 40, 40])]
    n["ever_dead_per_layer"] = [[40, e] for _, e in n["ever_dead_per_layer"]]
    assert exp.decide(n).status == "confirmed"


def test_proportion_is_the_exact_binomial_interval():
    from actlab.experiments.base import proportion

    c = proportion("share", 8, 48, below=0.1)
    assert c.state == "unclear" and c.ci == pytest.approx((0.0748, 0.3022), abs=1e-3)
    assert proportion("share", 0, 384, below=0.1).state == "pass"
    assert proportion("share", 40, 100, below=0.1).state == "fail"
    assert proportion("share", 0, 0, below=0.1).state == "unclear"


def test_step_rule_reads_learning_not_the_zero_gradient():
    exp = get_experiment("step_not_trainable")
    n = {"zero": 1e-12, "moves": 0.01, "grad_max": {"step": [0.0, 0.0], "sigmoid": [0.5, 0.6]},
         "weight_change": {"step": [0.0, 0.0], "sigmoid": [0.3, 0.35]},
         "accuracy": {"step": [0.6, 0.62], "sigmoid": [0.97, 0.98]}}
    assert exp.decide(n).status == "confirmed"
    # Plausible: on an easy task the read-out above random step features fits as well as sigmoid.
    easy = {**n, "accuracy": {"step": [0.97, 0.99], "sigmoid": [0.98, 0.97]}}
    assert exp.decide(easy).status != "confirmed"


def test_zigzag_rule_compares_with_the_centred_sigmoid_and_can_fail():
    from actlab.experiments.zero_centred_zigzag import CENTRED

    exp = get_experiment("zero_centred_zigzag")
    n = {"feeding": ["sigmoid", CENTRED, "tanh"], "batch_sizes": [1, 8], "decide_batch": 8,
         "same_sign": {"sigmoid": [[1.0, 1.0], [0.37, 0.36, 0.38]], CENTRED: [[0.0, 0.0], [0.0, 0.01, 0.0]],
                       "tanh": [[0.0, 0.0], [0.0, 0.0, 0.0]]},
         "efficiency": {"sigmoid": [[0.09, 0.08], [0.21, 0.22, 0.2]], CENTRED: [[0.18, 0.19], [0.4, 0.39, 0.41]],
                        "tanh": [[0.12, 0.13], [0.25, 0.24, 0.26]]}}
    assert exp.decide(n).status == "confirmed"
    # Plausible: with a wide batch the deltas' signs average out and the paths look alike.
    alike = {**n, "efficiency": {**n["efficiency"], CENTRED: [[0.1, 0.1], [0.21, 0.2, 0.22]]}}
    assert exp.decide(alike).status != "confirmed"


def test_dying_relu_figure_skips_all_diverged_columns_quietly():
    import warnings

    from actlab.experiments.dying_relu import _nan_stats

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, std = _nan_stats([[math.nan, math.nan], [1.0, 2.0]], 1)
    assert math.isnan(mean[0]) and mean[1] == 1.5 and std[1] == 0.5
