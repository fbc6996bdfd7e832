"""Saturated units kill gradients, and large initial weights saturate units.

A tanh or sigmoid unit whose pre-activation is large sits on a flat part of its curve: ``f'`` is
close to 0 and so is every gradient passed through it. Large initial weights make large
pre-activations, so more units start (and stay) saturated and the layer's weights get little
gradient (LeCun et al. 1998, "Efficient BackProp"). We sweep the weight std of the hidden layer of a
one-hidden-layer net on digits (the output layer keeps Glorot's init, so only the hidden units'
saturation changes) and measure the saturated fraction and the hidden layer's gradient norm,
at init and after a short SGD run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from actlab.activations import get
from actlab.lab.data import load_dataset
from actlab.experiments.base import (
    Experiment,
    Progress,
    Verdict,
    compare,
    fmt_ms,
    threshold,
)
from actlab.lab.init import init_weights
from actlab.lab.compare import layer_gradients
from actlab.lab.models import MLP
from actlab.lab.train import TrainConfig, train
from actlab.probe.quantities.saturated import SATURATION_TOL, saturated_share

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",                          # scikit-learn 8x8 digits: 1437 training images, standardised
        "activations": ["tanh", "sigmoid"],
        "stds": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0],  # std of the hidden layer's weights, N(0, std^2)
        "width": 128,                              # hidden units (one hidden layer)
        "saturated_below": SATURATION_TOL,         # saturated: |f'(z)| < 5% of max |f'| (the probe's rule)
        "train_steps": 100,                        # SGD steps before the second measurement
        "lr": 0.1,                                 # SGD learning rate
        "batch_size": 32,                          # examples per SGD step
        "seeds": [0, 1, 2],
        "grad_factor": 0.25,                       # decision: grad norm at the largest std < 0.25 x at the smallest
        "most": 0.5,                               # ... and more than half the units saturated there
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "stds": [0.01, 0.3, 3.0], "width": 32, "train_steps": 20, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "stds": [0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0],
                    "train_steps": 1000, "seeds": [0, 1, 2, 3, 4]}

COLORS = {"tanh": "#0072B2", "sigmoid": "#D55E00"}


def _saturated_fraction(model: MLP, x: torch.Tensor, y: torch.Tensor, below: float) -> tuple[float, float]:
    """(share of (example, unit) pairs with |f'| < below x max|f'| (the probe's saturated quantity),
    the hidden layer's weight-gradient norm)."""
    g = layer_gradients(model, x, y)
    spec = get(model.activations()[0].spec.name)
    return float(saturated_share(g.derivative[0].abs().double(), spec.max_abs_derivative, below)), g.weight_grad_norms[0]


class SaturationInitScale(Experiment):
    name = "saturation_init_scale"
    order = 30
    title = "Large initial weights saturate units and kill their gradients"
    claim = ("Saturated tanh / sigmoid units pass back almost no gradient, and large initial weights "
             "saturate more units.")
    source = 'LeCun, Bottou, Orr & Mueller 1998, Efficient BackProp, Sec. 4.6; Glorot & Bengio 2010'
    source_found = ('Weights too large for the fan-in drive sigmoid units into saturation, where their derivative (and the gradient) is tiny.')
    method = ("One hidden layer (128 units, tanh or sigmoid) on digits; its weights drawn N(0, std^2) for std from "
              "0.01 to 3 (output layer: Glorot normal). Measured on the whole training set, at init and after a short "
              "SGD run: the saturated fraction (|f'(z)| < 5% of its maximum, over examples and units) and the hidden "
              "layer's weight-gradient norm. Confirmed when, for both activations, the saturated fraction at the "
              "largest std exceeds the smallest std's (at init and after training) and 0.5 at init, and the gradient "
              "norm at the largest std is below 0.25 x the smallest std's (log10 values; Welch's t at "
              "the 5% level).")

    settings_by_mode = SETTINGS
    expected_seconds = {"full": 55}  # one core, measured 2026-12-04 (scheduling hint only)

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        data = load_dataset(s["data"], seed=0)
        x, y = data.x_train, data.y_train
        out: dict[str, Any] = {"stds": s["stds"], "activations": s["activations"], "grad_factor": s["grad_factor"],
                               "most": s["most"], "sat_init": {}, "grad_init": {}, "sat_trained": {},
                               "grad_trained": {}, "train_accuracy": {}}
        jobs, done = len(s["activations"]) * len(s["stds"]) * len(s["seeds"]), 0
        for act in s["activations"]:
            cols: dict[str, list] = {k: [] for k in ("sat_init", "grad_init", "sat_trained", "grad_trained",
                                                     "train_accuracy")}
            for std in s["stds"]:
                row: dict[str, list] = {k: [] for k in cols}
                for seed in s["seeds"]:
                    model = MLP(data.in_features, data.out_features, depth=1, width=s["width"], activation=act)
                    init_weights(model, "xavier_normal", seed=seed)
                    init_weights(model.hidden_layers()[0], "normal", std=std, seed=seed + 1000)
                    sat, gn = _saturated_fraction(model, x, y, s["saturated_below"])
                    row["sat_init"].append(sat)
                    row["grad_init"].append(gn)
                    cfg = TrainConfig(loss="ce", optimiser="sgd", lr=s["lr"], batch_size=s["batch_size"],
                                      steps=s["train_steps"], seed=seed, eval_every=max(s["train_steps"], 1))
                    train(model, data, cfg)
                    sat, gn = _saturated_fraction(model, x, y, s["saturated_below"])
                    row["sat_trained"].append(sat)
                    row["grad_trained"].append(gn)
                    with torch.no_grad():
                        row["train_accuracy"].append(float((model(x).argmax(1) == y).double().mean()))
                    done += 1
                    progress(done / jobs, f"{act} std {std:g} seed {seed}")
                for k, column in cols.items():
                    column.append(row[k])
            for k, column in cols.items():
                out[k][act] = column
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        checks = []
        big = f"std {n['stds'][-1]:g}"
        small = f"std {n['stds'][0]:g}"
        for act in n["activations"]:
            checks.append(compare(f"{act}: saturated fraction at {big} > at {small} (init)",
                                  n["sat_init"][act][-1], n["sat_init"][act][0], expect="greater"))
            checks.append(threshold(f"{act}: most units saturated at {big} (init)", n["sat_init"][act][-1],
                                    above=n["most"]))
            checks.append(compare(f"{act}: saturated fraction at {big} > at {small} (after training)",
                                  n["sat_trained"][act][-1], n["sat_trained"][act][0], expect="greater"))
            checks.append(compare(f"{act}: hidden-layer gradient norm at {big} < {n['grad_factor']:g} x at {small}",
                                  n["grad_init"][act][-1], n["grad_init"][act][0], expect="less",
                                  factor=n["grad_factor"], log=True))
        return Verdict.from_checks(checks)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """The std axis reversed: small weights would then saturate and lose the gradient."""
        out = {**n}
        for k in ("sat_init", "grad_init", "sat_trained", "grad_trained", "train_accuracy"):
            out[k] = {a: list(reversed(v)) for a, v in n[k].items()}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for act in n["activations"]:
            for i, std in enumerate(n["stds"]):
                rows.append({
                    "activation": act, "weight std": std,
                    "saturated at init": fmt_ms(n["sat_init"][act][i], 2),
                    "saturated trained": fmt_ms(n["sat_trained"][act][i], 2),
                    "grad norm at init": fmt_ms(n["grad_init"][act][i]),
                    "grad norm trained": fmt_ms(n["grad_trained"][act][i]),
                    "train accuracy": fmt_ms(n["train_accuracy"][act][i], 3),
                })
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        stds = n["stds"]
        for act in n["activations"]:
            c = COLORS.get(act)
            for key, ls, when in (("sat_init", "-", "init"), ("sat_trained", "--", "trained")):
                v = np.array(n[key][act], dtype=float)
                ax1.errorbar(stds, v.mean(1), v.std(1), fmt="o" + ls, color=c, ms=4, capsize=2,
                             label=f"{act}, {when}")
            for key, ls, when in (("grad_init", "-", "init"), ("grad_trained", "--", "trained")):
                v = np.log10(np.clip(np.array(n[key][act], dtype=float), 1e-300, None))
                m, sd = np.nanmean(v, 1), np.nan_to_num(np.nanstd(v, 1))
                ax2.plot(stds, 10 ** m, "o" + ls, color=c, ms=4, label=f"{act}, {when}")
                ax2.fill_between(stds, 10 ** (m - sd), 10 ** (m + sd), color=c, alpha=0.15)
        ax1.set_xscale("log")
        ax1.set_ylim(-0.03, 1.03)
        ax1.set_xlabel("hidden-layer weight std")
        ax1.set_ylabel("saturated fraction (|f'| < 5% of max)")
        ax1.set_title("large weights saturate the units")
        ax1.legend(fontsize=8)
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("hidden-layer weight std")
        ax2.set_ylabel("||dL/dW_hidden||")
        ax2.set_title("... and the hidden layer's gradient dies")
        ax2.legend(fontsize=8)
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)


EXPERIMENT = SaturationInitScale()
