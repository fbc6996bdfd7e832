"""The step function cannot be trained by backpropagation; its sigmoid stand-in can.

The step (Heaviside) function is flat everywhere except at 0, so its derivative is 0 almost
everywhere and backprop multiplies every gradient that passes through it by 0: the weights below
a step layer never get a signal. Only the output layer, which sits above the last step, can
learn (a linear read-out of frozen random binary features). The sigmoid, a smooth stand-in for
the step, passes gradients and the whole net learns. We train the same MLP with each on the
circles set and record every step's hidden-layer gradients, how far the hidden weights move,
and the loss and accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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
from actlab._threads import torch_threads
from actlab.lab.models import MLP
from actlab.lab.train import Callback, TrainConfig, train

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "circles",                     # two concentric circles (not linearly separable)
        "n": 400,                              # training points
        "depth": 2,                            # hidden layers
        "width": 32,                           # units per hidden layer
        "activations": ["step", "sigmoid"],
        "init": "xavier_normal",               # Glorot normal weights ...
        "bias": "uniform",                     # ... and U[-1/sqrt(n), 1/sqrt(n)] biases, so step units are not all at 0
        "steps": 300,                          # Adam steps, full batch
        "lr": 0.02,                            # Adam learning rate
        "seeds": [0, 1, 2],
        "zero": 1e-12,                         # decision: step's hidden gradients / weight change below this
        "moves": 0.01,                         # ... sigmoid's hidden weights move by more than this (relative)
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "n": 200, "steps": 80, "width": 16, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "n": 1000, "steps": 1500, "seeds": [0, 1, 2, 3, 4]}

COLORS = {"step": "#D55E00", "sigmoid": "#0072B2"}


class HiddenGradients(Callback):
    """Largest hidden-layer weight-gradient norm seen over the run (read from ``.grad`` after backward)."""

    def __init__(self, model: MLP) -> None:
        self.layers, self.largest = model.hidden_layers(), 0.0

    def on_after_backward(self, step: int, model: torch.nn.Module, loss: torch.Tensor) -> None:
        norm = torch.stack([lin.weight.grad.norm() for lin in self.layers]).norm()
        self.largest = max(self.largest, float(norm))


class StepNotTrainable(Experiment):
    name = "step_not_trainable"
    order = 110
    title = "The step function blocks backpropagation"
    claim = ("The step function's derivative is 0, so backpropagation sends no gradient to the layers below it and "
             "they never learn; a sigmoid in its place trains.")
    source = 'Rumelhart, Hinton & Williams 1986, Learning representations by back-propagating errors'
    source_found = ("Gradient descent needs a differentiable unit: the threshold unit's derivative is zero, so they replaced it by the logistic sigmoid.")
    method = ("Circles (2-D); MLPs with 2 hidden layers of 32 step or sigmoid units (the catalog's step, "
              "derivative 0), Glorot normal weights, uniform biases, full-batch Adam. Recorded: the largest "
              "hidden-layer gradient norm over all steps, the relative change of the hidden weights, the loss curve "
              "and training accuracy (the output layer above the last step can still learn a read-out). Confirmed "
              "when the sigmoid net's hidden weights move by more than 1% on every seed and its final training "
              "accuracy is higher than the step net's (Welch's t at the 5% level). The step net's zero hidden "
              "gradients and unmoved weights (below 1e-12) follow from f' = 0: sanity checks, shown apart.")

    settings_by_mode = SETTINGS
    expected_seconds = {"full": 15}  # one core, measured 2026-12-04 (scheduling hint only)

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        with torch_threads(1):  # small nets: one thread is as fast, and does not spin on a busy machine
            out: dict[str, Any] = {"activations": s["activations"], "grad_max": {}, "weight_change": {}, "accuracy": {},
                                   "loss_curves": {}, "zero": s["zero"], "moves": s["moves"]}
            jobs, done = len(s["activations"]) * len(s["seeds"]), 0
            for act in s["activations"]:
                for key in ("grad_max", "weight_change", "accuracy", "loss_curves"):
                    out[key][act] = []
                for seed in s["seeds"]:
                    data = load_dataset(s["data"], n=s["n"], seed=seed)
                    model = MLP(2, 2, depth=s["depth"], width=s["width"], activation=act)
                    init_weights(model, s["init"], bias=s["bias"], seed=seed)
                    before = torch.cat([lin.weight.detach().flatten() for lin in model.hidden_layers()]).clone()
                    grads = HiddenGradients(model)
                    cfg = TrainConfig(loss="ce", optimiser="adam", lr=s["lr"], batch_size=None, steps=s["steps"],
                                      seed=seed, eval_every=max(s["steps"] // 10, 1), threads=1)
                    res = train(model, data, cfg, callbacks=[grads])
                    after = torch.cat([lin.weight.detach().flatten() for lin in model.hidden_layers()])
                    out["grad_max"][act].append(grads.largest)
                    out["weight_change"][act].append(float((after - before).norm() / before.norm()))
                    out["accuracy"][act].append(1.0 - res.final["train_error"])
                    out["loss_curves"][act].append(res.losses)
                    done += 1
                    progress(done / jobs, f"{act} seed {seed}")
            return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        # f' = 0 gives exactly zero hidden gradients and no movement by arithmetic: sanity checks. The rule
        # is what follows for learning, which could come out either way.
        sanity = [
            threshold("step net: largest hidden-layer gradient norm over training", n["grad_max"]["step"],
                      below=n["zero"]),
            threshold("step net: relative change of the hidden weights", n["weight_change"]["step"], below=n["zero"]),
        ]
        checks = [
            threshold("sigmoid net: relative change of the hidden weights", n["weight_change"]["sigmoid"],
                      above=n["moves"]),
            compare("sigmoid net's training accuracy > step net's", n["accuracy"]["sigmoid"], n["accuracy"]["step"],
                    expect="greater"),
        ]
        return Verdict.from_checks(checks, sanity=sanity)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        swap = lambda d: {**d, "step": d["sigmoid"], "sigmoid": d["step"]}
        return {**n, **{k: swap(n[k]) for k in ("grad_max", "weight_change", "accuracy", "loss_curves")}}

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"activation": a,
                 "largest hidden grad norm": fmt_ms(n["grad_max"][a]),
                 "hidden weight change (rel.)": fmt_ms(n["weight_change"][a]),
                 "loss: first step": fmt_ms([c[0] for c in n["loss_curves"][a]]),
                 "loss: last step": fmt_ms([c[-1] for c in n["loss_curves"][a]]),
                 "train accuracy": fmt_ms(n["accuracy"][a])} for a in n["activations"]]

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        for act in n["activations"]:
            c = np.asarray(n["loss_curves"][act], dtype=float)
            m, sd = c.mean(0), c.std(0)
            steps = np.arange(1, c.shape[1] + 1)
            ax1.plot(steps, m, color=COLORS.get(act), label=f"{act} (train acc {np.mean(n['accuracy'][act]):.2f})")
            ax1.fill_between(steps, m - sd, m + sd, color=COLORS.get(act), alpha=0.2)
        ax1.set_xlabel("Adam step (full batch)")
        ax1.set_ylabel("training loss (cross-entropy)")
        ax1.set_title("loss: the step net learns only its read-out")
        ax1.grid(alpha=0.3)
        ax1.legend()
        acts = n["activations"]
        xs = np.arange(len(acts))
        floor = 1e-16  # zero plotted at the floor of the log axis
        for i, (key, label) in enumerate((("grad_max", "largest hidden-layer gradient norm"),
                                          ("weight_change", "relative change of hidden weights"))):
            vals = [max(float(np.mean(n[key][a])), floor) for a in acts]
            bars = ax2.bar(xs + (i - 0.5) * 0.38, vals, width=0.38, label=label,
                           color=["#555555", "#BBBBBB"][i])
            for b, a in zip(bars, acts):
                v = float(np.mean(n[key][a]))
                ax2.annotate("0" if v == 0 else f"{v:.2g}", (b.get_x() + b.get_width() / 2, b.get_height()),
                             ha="center", va="bottom", fontsize=9)
        ax2.set_yscale("log")
        ax2.set_ylim(floor / 2, 1e5)  # head room for the legend
        ax2.set_xticks(xs, acts)
        ax2.set_title("what reaches the hidden layers (0 drawn at 1e-16)")
        ax2.legend(fontsize=8, loc="upper left")
        ax2.grid(alpha=0.3, axis="y")


EXPERIMENT = StepNotTrainable()
