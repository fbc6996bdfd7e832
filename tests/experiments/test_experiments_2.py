"""Experiment-specific checks for the lab's experiments of order 90-160 (the generic tiny-run test is in
test_experiments.py): the helpers they measure with, and their decision rules on hand-made numbers."""

from __future__ import annotations

import math

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


def test_init_depth30_rule_on_hand_made_numbers():
    exp = get_experiment("init_depth30")
    arms = ["ReLU, He normal", "ReLU, Xavier normal", "ReLU, N(0, 0.01^2)", "tanh, Xavier normal"]
    good = {"first_grad": {a: [0.5, 0.6, 0.7] for a in arms}, "loss_drop": {a: [0.3, 0.35, 0.4] for a in arms},
            "decades": 3.0, "stall": 0.05}
    good["first_grad"]["ReLU, N(0, 0.01^2)"] = [1e-17, 2e-17, 1.5e-17]
    good["loss_drop"]["ReLU, N(0, 0.01^2)"] = [1e-5, 2e-5, 1e-5]
    assert exp.decide(good).status == "confirmed"
    stalled_he = {**good, "loss_drop": {**good["loss_drop"], "ReLU, He normal": [1e-7, 2e-7, 1.5e-7]}}
    assert exp.decide(stalled_he).status == "not confirmed"
    same = {**good, "loss_drop": {**good["loss_drop"], "ReLU, He normal": good["loss_drop"]["ReLU, N(0, 0.01^2)"]}}
    assert exp.decide(same).status == "inconclusive"


def test_same_seed_same_numbers():
    exp = get_experiment("step_not_trainable")
    s = {**exp.settings("tiny"), "steps": 20, "seeds": [3]}
    assert exp.measure(s, lambda f, m: None) == exp.measure(s, lambda f, m: None)
