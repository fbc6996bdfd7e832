"""Experiment-specific checks for the first eight lab experiments (orders 10-80).

The generic test (tests/lab/test_experiments.py) runs each in tiny mode; here: the measurement
helpers they share, and decision rules on hand-made numbers.
"""

from __future__ import annotations

import math

import pytest
import torch

from actlab._threads import torch_threads
from actlab.experiments import get_experiment
from actlab.experiments.zero_init_symmetry import symmetry
from actlab.lab.init import init_weights
from actlab.lab.models import MLP


def _data(n: int = 64, d: int = 8, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)


def test_symmetry_measures_identical_and_distinct_units():
    # the share is the probe's identical_units quantity: exact equality of [w_i, b_i]
    w = torch.ones(4, 3) * 0.5
    assert symmetry(w, torch.zeros(4)) == (1.0, pytest.approx(0.0, abs=1e-12))
    assert symmetry(torch.zeros(4, 3), torch.zeros(4)) == (1.0, 0.0)
    same, rank = symmetry(torch.eye(4, 3), torch.zeros(4))  # rows 3 (all zero) is alone: no unit equals another
    assert same == 0.0 and rank == pytest.approx(1.0)
    b = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert symmetry(w, b)[0] == 1.0 and symmetry(w, torch.arange(4.0))[0] == 0.0


def test_zero_init_symmetry_rule_and_counterfactual():
    exp = get_experiment("zero_init_symmetry")
    inits = ["zeros", "constant", "random"]
    n = {"inits": inits, "depth": 2, "rank1_below": 1e-4, "distinct_above": 0.1,
         "identical": {"zeros": [[1.0, 1.0]] * 2, "constant": [[1.0, 1.0]] * 2, "random": [[0.0, 0.0]] * 2},
         "rank_ratio": {"zeros": [[0.0, 0.0]] * 2, "constant": [[1e-9, 1e-8]] * 2, "random": [[0.5, 0.6]] * 2},
         "train_error": {k: [0.5, 0.5] for k in inits}, "loss_curve": {k: [] for k in inits}}
    assert exp.decide(n).status == "confirmed"
    assert exp.decide(exp.counterfactual(n)).status == "not confirmed"
    # one unit of one layer drifting from its copies is not "identical"
    n["identical"] = {**n["identical"], "constant": [[1.0, 30 / 32]] * 2}
    assert exp.decide(n).status != "confirmed"


def _vanishing_numbers(sig: float, relu: float) -> dict:
    return {"depths": [2, 10], "activations": ["sigmoid", "relu"], "orders": 2.0, "min_depth": 10,
            "ratio_init": {"sigmoid": [[0.1, 0.1, 0.1], [sig, sig * 2, sig / 2]], "relu": [[1, 1, 1], [relu] * 3]},
            "ratio_trained": {"sigmoid": [[0.1] * 3, [sig, sig * 3, sig / 3]], "relu": [[1] * 3, [relu, relu, relu]]}}


def test_sigmoid_vanishing_needs_orders_of_magnitude():
    exp = get_experiment("sigmoid_vanishing")
    assert exp.decide(_vanishing_numbers(1e-6, 1.0)).status == "confirmed"
    assert exp.decide(_vanishing_numbers(0.1, 1.0)).status == "not confirmed"  # smaller, but not 100x


def test_relu_converges_faster_scores_each_at_its_best_lr():
    from actlab.experiments.relu_converges_faster import best_lr

    exp = get_experiment("relu_converges_faster")
    n = {"activations": ["relu", "tanh"], "lrs": [0.1, 1.0], "max_steps": 500, "target": 0.05,
         "steps": {"relu": [[100, 110, 90], ["diverged"] * 3], "tanh": [[None, None, None], [300, 320, 310]]},
         "curves": {"relu": [[], []], "tanh": [[], []]}}
    assert best_lr(n, "relu") == 0 and best_lr(n, "tanh") == 1
    assert exp.decide(n).status == "confirmed"
    assert exp.decide(exp.counterfactual(n)).status == "not confirmed"


def test_exp_cost_groups_follow_the_catalog_cost():
    exp = get_experiment("exp_cost")
    names = ["relu", "identity", "sigmoid", "gelu"]
    cost = {"relu": "cheap", "identity": "cheap", "sigmoid": "exp", "gelu": "erf+exp"}
    times = {"relu": [1.0] * 3, "identity": [0.9, 1.0, 1.1], "sigmoid": [4.0, 4.2, 3.8], "gelu": [6.0, 6.1, 5.9]}
    n = {"activations": names, "factor": 1.5, "cost": cost, "fwd_ns": times, "fwd_bwd_ns": times}
    assert exp.decide(n).status == "confirmed"
    assert exp.decide(exp.counterfactual(n)).status == "not confirmed"
    assert exp.deterministic is False


def test_vanishing_near_input_counterfactual_reverses_the_profile():
    exp = get_experiment("vanishing_near_input")
    # three seeds with some spread: without any, Welch's test is undefined and the rule cannot decide
    prof = [[10.0 ** (k - 6) * (1 + 0.1 * seed) for k in range(4)] + [1.0] for seed in range(3)]
    n = {"activation": "sigmoid", "activations": ["sigmoid"], "depth": 4, "first_share": 0.25, "factor": 0.1,
         "init": {"sigmoid": prof}, "trained": {"sigmoid": prof}}
    assert exp.decide(n).status == "confirmed"
    flipped = exp.counterfactual(n)
    assert flipped["init"]["sigmoid"][0][:4] == list(reversed(prof[0][:4]))
    assert exp.decide(flipped).status == "not confirmed"
    assert not math.isnan(sum(flipped["init"]["sigmoid"][0]))


def test_sigmoid_vanishing_survives_zero_gradient_norms(monkeypatch):
    """A dead ReLU net (every weight gradient exactly 0, as ReLU depth 25 seed 2 after training in full
    mode) or a vanished first-layer gradient is a result: ratio NaN / 0, named in the verdict, no crash."""
    from actlab.experiments import sigmoid_vanishing as sv
    from actlab.experiments.sigmoid_vanishing import grad_ratio

    assert grad_ratio(0.0, 0.0) != grad_ratio(0.0, 0.0)  # NaN
    assert grad_ratio(1.0, 0.0) == math.inf and grad_ratio(0.0, 2.0) == 0.0 and grad_ratio(1.0, 4.0) == 0.25
    real = sv.layer_gradients
    calls = []

    def dead_relu(model, x, y, **kw):
        g = real(model, x, y, **kw)
        calls.append(1)
        if len(calls) == 2:  # the second measurement: the first net after training
            g.weight_grad_norms = [0.0] * len(g.weight_grad_norms)
        return g

    monkeypatch.setattr(sv, "layer_gradients", dead_relu)
    exp = get_experiment("sigmoid_vanishing")
    n = exp.measure(exp.settings("tiny"), lambda f, m: None)
    first = n["activations"][0]
    assert math.isnan(n["ratio_trained"][first][0][0])
    assert n["zero_grad"] == [f"{first} depth {n['depths'][0]} seed 0 after training: every weight gradient exactly 0 "
                              "(a dead net), ratio undefined"]
    v = exp.decide(n)
    assert "dead net" in v.reason and v.status in ("confirmed", "not confirmed", "inconclusive")
