"""Vanishing is worst near the input: in a deep sigmoid net the first layers get the least gradient.

The backward pass starts at the loss and picks up one factor ``W^T diag(f'(z))`` per layer on its
way down, so with sigmoid (``f' <= 1/4``) the gradient of layer l is scaled by about ``(1/4)^(L-l)``:
the layers next to the input learn slowest. We draw the per-layer profile of weight-gradient
norms ``||dL/dW_l||`` of a deep sigmoid MLP on digits, at init and after a short SGD run, with tanh
and ReLU nets of the same shape as references.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.lab.data import load_dataset
from actlab.experiments.base import (
    Experiment,
    Progress,
    Verdict,
    compare,
    fmt_ms,
    threshold,
)
from actlab.lab.compare import layer_gradients
from actlab.sweep import Config, Record, lab_model, train_group

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",                # scikit-learn 8x8 digits: 1437 training images, standardised
        "activation": "sigmoid",         # the net under test
        "references": ["tanh", "relu"],  # same shape, drawn for comparison (not part of the verdict)
        "depth": 12,                     # hidden layers
        "width": 64,                     # units per hidden layer
        "init": "xavier_normal",         # Glorot normal, every activation
        "n_measure": 512,                # training examples the gradient norms are measured on
        "train_steps": 60,               # SGD steps before the second profile
        "lr": 0.1,                       # SGD learning rate
        "batch_size": 64,                # examples per SGD step
        "seeds": [0, 1, 2],
        "first_share": 0.25,             # decision: the smallest norm lies in the first quarter of layers
        "factor": 0.1,                   # ... and layer 1's norm < 0.1 x the last hidden layer's
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "depth": 6, "width": 32, "train_steps": 10, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "depth": 20, "train_steps": 500, "seeds": [0, 1, 2, 3, 4],
                    "n_measure": 1437}

COLORS = {"sigmoid": "#D55E00", "tanh": "#0072B2", "relu": "#009E73"}


def _argmin_position(profile: list[float], n_hidden: int) -> float:
    """Where the smallest hidden-layer gradient norm sits: 0 = first layer, 1 = last hidden layer."""
    hidden = [v if math.isfinite(v) else math.inf for v in profile[:n_hidden]]
    return float(np.argmin(hidden)) / max(n_hidden - 1, 1)


class VanishingNearInput(Experiment):
    name = "vanishing_near_input"
    order = 20
    title = "Vanishing is worst near the input"
    claim = "In a deep sigmoid net the gradients are smallest at the first layers, next to the input."
    source = 'Nielsen, Neural Networks and Deep Learning, ch. 5 (2015); Glorot & Bengio 2010, Sec. 4.3'
    source_found = ('In sigmoid MLPs on MNIST the layers next to the input learn slowest: their gradient norms are the smallest (Nielsen: the first of four hidden layers learns about 100 times slower than the fourth).')
    proxy_note = 'An MLP on 8x8 digits instead of 28x28 MNIST.'
    method = ("Per-layer weight-gradient norms ||dL/dW_l|| (each layer's weight matrix, no bias: the probe's weight_grad_norm; "
              "on 512 digits training examples) of a 12-layer sigmoid MLP "
              "(Glorot normal init), at init and after a short SGD run (a fresh permutation of the training set each epoch; every net trained at "
              "once on actlab's batched engine), over seeds; tanh and ReLU nets of the same "
              "shape are drawn for reference. Confirmed when, at init and after training, the smallest hidden-layer "
              "norm sits in the first quarter of the layers for every seed, and the first layer's norm is below "
              "0.1 x the last hidden layer's (log10 values, Welch's t at the 5% level).")

    settings_by_mode = SETTINGS
    expected_seconds = {"full": 9}  # one core, measured 2026-12-04 (scheduling hint only)

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        data = load_dataset(s["data"], seed=0)
        x, y = data.x_train[: s["n_measure"]], data.y_train[: s["n_measure"]]
        acts = [s["activation"], *s["references"]]
        out: dict[str, Any] = {"activation": s["activation"], "activations": acts, "depth": s["depth"],
                               "first_share": s["first_share"], "factor": s["factor"],
                               "init": {}, "trained": {}}
        configs = [Config.from_dict({"activation": act, "depth": s["depth"], "width": s["width"], "init": s["init"],
                                     "bias_init": 0.0, "lr": s["lr"], "optimiser": "sgd", "data": s["data"],
                                     "seed": seed, "steps": s["train_steps"], "batch_size": s["batch_size"]})
                   for act in acts for seed in s["seeds"]]
        progress(0.0, "training every net on the batched engine")
        results = iter(zip(configs, train_group(configs, Record(every=s["train_steps"], metrics=("loss",),
                                                                keep_params=True))))
        jobs, done = len(configs), 0
        for act in acts:
            p0, p1 = [], []
            for seed in s["seeds"]:
                c, res = next(results)
                model = lab_model(c, data.in_features, data.out_features, res.params_init)
                p0.append(layer_gradients(model, x, y).weight_grad_norms)
                trained = lab_model(c, data.in_features, data.out_features, res.params)
                p1.append([math.nan] * (s["depth"] + 1) if res.status == "diverged"
                          else layer_gradients(trained, x, y).weight_grad_norms)
                done += 1
                progress(done / jobs, f"gradients: {act} seed {seed}")
            out["init"][act], out["trained"][act] = p0, p1
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        act, depth = n["activation"], n["depth"]
        checks = []
        for key, when in (("init", "at init"), ("trained", "after training")):
            profiles = n[key][act]
            checks.append(threshold(f"{when}: the smallest gradient norm sits in the first quarter of the layers "
                                    "(0 = first, 1 = last hidden)",
                                    [_argmin_position(p, depth) for p in profiles], below=n["first_share"] + 1e-9))
            checks.append(compare(f"{when}: ||dL/dW_1|| < {n['factor']:g} x ||dL/dW_{depth}||",
                                  [p[0] for p in profiles], [p[depth - 1] for p in profiles],
                                  expect="less", factor=n["factor"], log=True))
        return Verdict.from_checks(checks)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """The hidden-layer profiles reversed: the input end gets the largest gradients."""
        act, depth = n["activation"], n["depth"]

        def flip(profiles: list[list[float]]) -> list[list[float]]:
            return [list(reversed(p[:depth])) + p[depth:] for p in profiles]

        return {**n, "init": {**n["init"], act: flip(n["init"][act])},
                "trained": {**n["trained"], act: flip(n["trained"][act])}}

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for layer in range(n["depth"] + 1):
            row: dict[str, Any] = {"layer": "output" if layer == n["depth"] else layer + 1}
            for act in n["activations"]:
                row[f"{act} at init"] = fmt_ms([p[layer] for p in n["init"][act]])
            row[f"{n['activation']} trained"] = fmt_ms([p[layer] for p in n["trained"][n["activation"]]])
            rows.append(row)
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        axes = fig.subplots(1, 2, sharey=True)
        layers = np.arange(1, n["depth"] + 2)
        for ax, key, label in zip(axes, ("init", "trained"), ("at init", "after a short SGD run")):
            for act in n["activations"]:
                logs = np.log10(np.clip(np.array(n[key][act], dtype=float), 1e-300, None))
                m, sd = np.nanmean(logs, axis=0), np.nan_to_num(np.nanstd(logs, axis=0))
                c = COLORS.get(act)
                lw = 2.4 if act == n["activation"] else 1.2
                ax.plot(layers, 10 ** m, "o-", color=c, lw=lw, ms=4, label=act)
                ax.fill_between(layers, 10 ** (m - sd), 10 ** (m + sd), color=c, alpha=0.2)
            ax.set_yscale("log")
            ax.set_xlabel("layer (1 = next to the input; last = output layer)")
            ax.set_title(f"{n['depth']} hidden layers, {label}")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("||dL/dW_l||  (mean of log10 ± std)")
        axes[0].legend()


EXPERIMENT = VanishingNearInput()
