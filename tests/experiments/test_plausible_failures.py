"""Each rule can come out the other way on a plausible setting, not only on its counterfactual.

For every experiment here: hand-made numbers shaped like its ``measure()`` output, first a case
the rule confirms, then a plausible variant (one a real run could give: a setting, a budget or a
machine where the source's effect is weak) on which it must not confirm. The counterfactual test
(tests/experiments/test_experiments.py) reverses the effect; these keep the direction and only
weaken it, which is what a rule that cannot fail would miss.
"""

from __future__ import annotations

import math

from actlab.experiments import get_experiment
from actlab.experiments.base import inside_grid

SEEDS = 5


def _jitter(v: float, k: int, rel: float = 0.05) -> float:
    """``v`` moved by a small, seed-dependent amount (so no arm has zero spread)."""
    return v * (1 + rel * ((k % 3) - 1) + rel / 3 * (k % 2))


def _seeds(v: float, rel: float = 0.05) -> list[float]:
    return [_jitter(v, k, rel) for k in range(SEEDS)]


# ----------------------------------------------------------------------------- vanishing_near_input


def _profiles(norms: list[float]) -> list[list[float]]:
    return [[_jitter(v, k) for v in norms] for k in range(SEEDS)]


def _vanishing(trained: list[float]) -> dict:
    depth = 6
    decaying = [10.0 ** (-0.6 * (depth - 1 - layer)) for layer in range(depth)] + [1.0]  # hidden layers, output
    return {"activation": "sigmoid", "activations": ["sigmoid"], "depth": depth, "first_share": 0.25,
            "factor": 0.1, "init": {"sigmoid": _profiles(decaying)}, "trained": {"sigmoid": _profiles(trained)}}


def test_vanishing_near_input_can_fail_when_training_evens_the_profile():
    exp = get_experiment("vanishing_near_input")
    decaying = [10.0 ** (-0.6 * (5 - layer)) for layer in range(6)] + [1.0]
    assert exp.decide(_vanishing(decaying)).status == "confirmed"
    # Plausible: after training the first layers have caught up - the smallest norm sits mid-net
    # and layer 1 gets half of the last hidden layer's gradient (a flat, tanh-like profile).
    flat = [0.5, 0.45, 0.4, 0.6, 0.8, 1.0, 2.0]
    v = exp.decide(_vanishing(flat))
    assert v.status == "not confirmed"
    assert [c.state for c in v.checks][:2] == ["pass", "pass"]  # at init it still holds


# ----------------------------------------------------------------------------- saturation_init_scale


def _saturation(grad_small: float) -> dict:
    stds = [0.003, 0.3, 3.0]
    col = lambda *vals: [_seeds(v) for v in vals]  # noqa: E731 - one column per std
    n = {"stds": stds, "activations": ["tanh"], "grad_factor": 0.25, "most": 0.5,
         "sat_init": {"tanh": col(0.0 + 1e-3, 0.02, 0.85)}, "sat_trained": {"tanh": col(0.01, 0.05, 0.7)},
         "grad_init": {"tanh": col(grad_small, 0.3, 1e-4)}, "grad_trained": {"tanh": col(0.1, 0.2, 1e-3)},
         "train_accuracy": {"tanh": col(0.9, 0.95, 0.5)}}
    return n


def test_saturation_init_scale_can_fail_when_tiny_weights_lose_the_gradient_too():
    exp = get_experiment("saturation_init_scale")
    assert exp.decide(_saturation(0.1)).status == "confirmed"
    # Plausible: at std 0.003 the backward pass multiplies by tiny weights layer after layer, so
    # the small-std end loses its gradient as well (1e-5 < the saturated end's 1e-4).
    v = exp.decide(_saturation(1e-5))
    assert v.status == "not confirmed"
    assert [c.state for c in v.checks] == ["pass", "pass", "pass", "fail"]


# ----------------------------------------------------------------------------- exp_cost


def _costs(trans_ratio: float) -> dict:
    cost = {"relu": "cheap", "leaky_relu": "cheap", "hardtanh": "cheap", "tanh": "tanh", "sigmoid": "exp",
            "gelu": "erf"}
    per_elem_relu = 0.3  # ns per element
    times = {a: [_jitter(per_elem_relu * (1.0 if c == "cheap" else trans_ratio), k, 0.03) for k in range(SEEDS)]
             for a, c in cost.items()}
    times["relu"] = [per_elem_relu] * SEEDS
    return {"factor": 1.5, "cost": cost, "activations": list(cost), "fwd_ns": times,
            "fwd_bwd_ns": {a: [2 * t for t in v] for a, v in times.items()}}


def test_exp_cost_can_fail_when_memory_bound():
    exp = get_experiment("exp_cost")
    assert exp.decide(_costs(3.0)).status == "confirmed"
    # Plausible: on a tensor far larger than the caches, with vectorised exp (AVX-512 SLEEF), every
    # activation waits on memory: the transcendental ones cost 1.2x ReLU, not more than 1.5x.
    assert exp.decide(_costs(1.2)).status == "not confirmed"


# ----------------------------------------------------------------------------- zero_mean_input


def _zero_mean(centre_loss: float) -> dict:
    layers_none = [0.92, 0.75, 0.72, 0.7]  # same-sign share per Linear layer (3 hidden + output)
    layers_centre = [0.62, 0.74, 0.73, 0.69]
    share = {"none": [_seeds(v, 0.01) for v in layers_none], "centre": [_seeds(v, 0.01) for v in layers_centre]}
    grid = [0.005, 0.015, 0.045, 0.135]
    tuned = {"none": {"lr": 0.045, "final_loss": _seeds(0.05), "grid": {str(g): _seeds(0.05) for g in grid}},
             "centre": {"lr": 0.045, "final_loss": _seeds(centre_loss), "grid": {str(g): _seeds(0.05) for g in grid}}}
    return {"preprocess": ["none", "centre"], "depth": 3, "share": share, "first_drop": 0.1,
            "deeper_fraction": 0.5, "tuned": tuned}


def test_zero_mean_input_can_fail_when_centring_does_not_speed_training():
    exp = get_experiment("zero_mean_input")
    v = exp.decide(_zero_mean(0.02))
    assert v.status == "confirmed" and all(c.state == "pass" for c in v.sanity)  # best lr inside the grid
    # Plausible: each at its own best lr, raw inputs train as well as centred ones (the tuned lr
    # absorbs the scale): layer 1's signs still change, but the speed clause fails.
    v = exp.decide(_zero_mean(0.06))
    assert v.status == "not confirmed" and v.checks[-1].state == "fail"
    assert all(c.state == "pass" for c in v.checks[:-1])


# ----------------------------------------------------------------------------- lstm_vs_rnn


def _lstm(lstm_mse: float) -> dict:
    ratio = lambda *per_length: [_seeds(v, 0.3) for v in per_length]  # noqa: E731 - seeds per length
    return {"kinds": ["rnn", "lstm"], "lengths": [10, 100], "decades": 2.0, "train_length": 100, "solved": 0.05,
            "ratio_init": {"rnn": ratio(1e-2, 1e-12), "lstm": ratio(0.5, 0.05)},
            "ratio_trained": {"rnn": ratio(1e-2, 1e-10), "lstm": ratio(0.5, 0.1)},
            "test_mse": {"rnn": _seeds(0.166, 0.01), "lstm": _seeds(lstm_mse, 0.1)}}


def test_lstm_vs_rnn_can_fail_when_the_lstm_does_not_solve_t100_in_budget():
    exp = get_experiment("lstm_vs_rnn")
    assert exp.decide(_lstm(0.01)).status == "confirmed"
    # Plausible: the LSTM keeps its gradient (the ratio clauses hold) but has not solved adding at
    # T = 100 within the step budget (test MSE 0.12, below the 0.167 baseline but not "solved"):
    # a budget too small for the lag.
    v = exp.decide(_lstm(0.12))
    assert v.status == "not confirmed"
    assert [c.state for c in v.checks][:2] == ["pass", "pass"]


# ----------------------------------------------------------------------------- relu_cnn_epochs


def _cnn(relu: float, tanh: float, best: int = 1) -> dict:
    """Epochs to target of the test seeds at each activation's picked lr (the given mean); the tuning runs
    at lr index ``best`` as fast, 3x slower at the other rates of its grid."""
    lrs = {"relu": [0.003, 0.01, 0.03], "tanh": [0.03, 0.1, 0.3]}
    tune = lambda v: [[v if i == best else 3 * v] for i in range(3)]  # noqa: E731
    return {"activations": ["relu", "tanh"], "lrs": lrs, "target": 0.25, "max_epochs": 10.0, "source_ratio": 6.0,
            "check_epochs": 0.1, "tune_seeds": [100], "tuning": {"relu": tune(relu), "tanh": tune(tanh)},
            "epochs": {"relu": _seeds(relu), "tanh": _seeds(tanh)}, "curves": {"relu": [], "tanh": []}}


def test_relu_cnn_epochs_can_fail_on_a_plausible_setting():
    exp = get_experiment("relu_cnn_epochs")
    v = exp.decide(_cnn(3.0, 9.0))
    assert v.status == "confirmed" and all(c.state == "pass" for c in v.sanity)
    assert "tanh / ReLU epochs ratio 3" in v.reason
    # The counterfactual (ReLU's runs and grid swapped with tanh's) flips it.
    assert exp.decide(exp.counterfactual(_cnn(3.0, 9.0))).status == "not confirmed"
    # Plausible: both nets sit on the small-init plateau for about six epochs and tanh leaves it a
    # little sooner (as measured with layers-18pct's init): the rule says no.
    assert exp.decide(_cnn(6.5, 5.5)).status == "not confirmed"
    # Tied within the seeds' spread: neither way.
    assert exp.decide(_cnn(6.0, 6.05)).status == "inconclusive"
    # An optimum at the grid's edge is flagged (shown apart, not deciding).
    edge = exp.decide(_cnn(3.0, 9.0, best=2))
    assert edge.status == "confirmed" and [c.state for c in edge.sanity] == ["fail", "fail"]


def test_inside_grid_names_the_edge():
    assert inside_grid("x", 1, [1, 2, 3]).state == "pass"
    low, high = inside_grid("x", 0, [1, 2, 3]), inside_grid("x", 2, [1, 2, 3])
    assert low.state == high.state == "fail" and low.role == "sanity"
    assert "lowest" in low.detail and "highest" in high.detail and "best 3 of 1, 2, 3" in high.detail
    assert math.isfinite(low.effect)


# ----------------------------------------------------------------------------- linear_collapse


def _collapse(identity_acc: float, relu_acc: float) -> dict:
    acc = {"linear": _seeds(0.5), "identity": _seeds(identity_acc), "relu": _seeds(relu_acc), "tanh": _seeds(relu_acc)}
    return {"datasets": ["xor"], "arms": ["linear", "identity", "relu", "tanh"], "same_as_linear": 0.05,
            "fits_by": 0.15, "product_tol": 1e-4, "accuracy": {"xor": acc}, "product_error": {"xor": [1e-7] * SEEDS}}


def test_linear_collapse_can_fail_when_the_deep_linear_net_trains_worse_or_relu_underfits():
    exp = get_experiment("linear_collapse")
    assert exp.decide(_collapse(0.5, 0.95)).status == "confirmed"
    # Plausible: the deep identity net, badly conditioned, ends below logistic regression in the budget
    # (the same function class, not the same optimisation): not "one linear layer" in what it reaches.
    assert exp.decide(_collapse(0.4, 0.95)).status != "confirmed"
    # Plausible: too few steps for the ReLU net to fit XOR: no gain over the identity net.
    assert exp.decide(_collapse(0.5, 0.55)).status != "confirmed"
