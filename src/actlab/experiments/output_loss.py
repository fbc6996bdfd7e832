"""A saturating output needs a matching loss: sigmoid with cross-entropy, not with squared error.

With ``y_hat = sigma(z)`` and the squared error ``(y_hat - y)^2 / 2``, the gradient at the output's
pre-activation is ``(y_hat - y) sigma'(z)``: when the unit is confidently wrong (``y_hat`` near 0
for ``y = 1``), ``sigma'(z)`` is near 0 and it learns slowest exactly where it is most wrong. With
the binary cross-entropy the ``sigma'`` factor cancels and the gradient is ``y_hat - y``. The same
holds for softmax with the multinomial cross-entropy (gradient ``p - onehot(y)``) against softmax
with the squared error (``J_softmax^T (p - onehot(y))``). We train the read-out alone (no hidden
layer: the output nonlinearity is the only one) on digits, started with large weights so that
many outputs are saturated and confidently wrong, with each loss at its best learning rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from actlab.activations.outputs import get_output
from actlab.experiments.base import Experiment, Progress, Verdict, compare, fmt_ms, inside_grid
from actlab.lab.data import load_dataset

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",                  # scikit-learn 8x8 digits: 1437 training images, standardised
        "tasks": ["binary", "multiclass"],  # binary: digit >= 5 (sigmoid output); multiclass: 10 digits (softmax)
        "init_std": 1.0,                   # read-out weights N(0, init_std^2): |z| ~ 8 on 64 inputs, saturated
        # full-batch gradient-descent grid, per task and loss; measured (quick, 3 seeds): binary MSE is best at
        # 300 (1000 ties, 3000 worse), BCE at 3, multiclass MSE at 100, CE at 30 - every optimum inside
        "lrs": [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0],
        "steps": 100,                      # full-batch steps
        "seeds": [0, 1, 2],
        "wrong": 0.9,                      # "confidently wrong": probability of the true class below 1 - this
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "lrs": [1.0, 10.0], "steps": 30, "seeds": [0, 1, 2]}
SETTINGS["full"] = {**SETTINGS["quick"], "lrs": [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0],
                    "steps": 500,
                    "seeds": list(range(10))}

OUTPUT = {"binary": "sigmoid", "multiclass": "softmax"}
LOSSES = {"binary": ("mse", "bce"), "multiclass": ("mse", "ce")}
COLORS = {"mse": "#D55E00", "bce": "#0072B2", "ce": "#0072B2"}


def output_gradient(task: str, loss: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``dL/dz`` per example, in closed form from the output spec (``y``: targets, one-hot for multiclass).

    Squared error ``sum_i (y_hat_i - y_i)^2 / 2`` gives ``J^T (y_hat - y)`` (the vjp of the
    residual); the matching cross-entropy gives the residual ``y_hat - y`` itself.
    """
    spec = get_output(OUTPUT[task])
    p = spec.forward(z)
    return spec.vjp(p - y, p) if loss == "mse" else p - y


def train_readout(x: torch.Tensor, y: torch.Tensor, task: str, loss: str, lr: float, steps: int, std: float,
                  seed: int) -> tuple[list[float], float]:
    """Full-batch gradient descent on a linear read-out; returns the training-error curve and the
    mean |dL/dz| on the confidently wrong examples at init (float64 throughout)."""
    g = torch.Generator().manual_seed(seed)
    k = y.shape[1]
    w = torch.randn(x.shape[1], k, generator=g, dtype=torch.float64) * std
    b = torch.zeros(k, dtype=torch.float64)
    curve = []
    wrong_grad = math.nan
    for t in range(steps + 1):
        z = x @ w + b
        pred = (z[:, 0] > 0).long() if task == "binary" else z.argmax(1)
        truth = y[:, 0].long() if task == "binary" else y.argmax(1)
        curve.append(float((pred != truth).double().mean()))
        dz = output_gradient(task, loss, z, y)
        if t == 0:
            p = get_output(OUTPUT[task]).forward(z)
            p_true = (p * y + (1 - p) * (1 - y))[:, 0] if task == "binary" else (p * y).sum(1)
            mask = p_true < 0.1
            wrong_grad = float(dz[mask].norm(dim=1).mean()) if mask.any() else math.nan
        if t == steps:
            break
        w -= lr * x.T @ dz / x.shape[0]
        b -= lr * dz.mean(0)
        if not torch.isfinite(w).all():
            curve += [math.nan] * (steps - t)
            break
    return curve, wrong_grad


def mean_error(curve: list[float]) -> float:
    """The training error averaged over the run (the area under the curve / steps): low when the
    error falls early, so it measures the speed of learning, not only where it ends. A diverged
    run counts as error 1 from where it stopped."""
    return float(np.mean([v if math.isfinite(v) else 1.0 for v in curve]))


def best_lr(n: dict[str, Any], task: str, loss: str) -> int:
    """Index of the learning rate with the lowest mean (over seeds) of :func:`mean_error`."""
    return int(np.argmin([np.mean([mean_error(c) for c in runs]) for runs in n["curves"][task][loss]]))


def speed(n: dict[str, Any], task: str, loss: str) -> list[float]:
    """:func:`mean_error` of each seed's run at the loss's best learning rate."""
    return [mean_error(c) for c in n["curves"][task][loss][best_lr(n, task, loss)]]


class OutputLoss(Experiment):
    name = "output_loss"
    order = 165
    title = "Sigmoid and softmax outputs learn fast with cross-entropy, slowly with squared error"
    claim = ("A confidently wrong sigmoid (softmax) output trained with squared error gets a gradient scaled by "
             "sigma' (the softmax Jacobian), near 0 when saturated, and learns slowly; with cross-entropy the factor "
             "cancels (gradient y_hat - y) and it learns fast.")
    source = ("Bishop 2006, Pattern Recognition and Machine Learning, Sec. 4.3.2 and 5.2; Nielsen, Neural Networks "
              "and Deep Learning, ch. 3 (the cross-entropy cost function)")
    source_found = ("Nielsen's one-neuron example: from a saturated, wrong start, the quadratic cost's learning stalls "
                    "for ~150 epochs while the cross-entropy cost learns at once; the gradient of cross-entropy "
                    "with a sigmoid (softmax) output is y_hat - y.")
    method = ("Digits (standardised); a linear read-out (no hidden layer) with a sigmoid output for digit >= 5 "
              "(binary) or a softmax output over the 10 digits (multiclass), weights N(0, 1) so that |z| ~ 8 and "
              "many outputs are saturated and confidently wrong (true-class probability below 0.1). Full-batch "
              "gradient descent for 100 steps with squared error (on the probabilities, one-hot targets) or the "
              "matching cross-entropy. Speed is the training error averaged over the run (the area under the error "
              "curve); each loss is scored at its best learning rate of a grid (lowest mean of that; seeds are weight "
              "draws; a best lr at the grid's edge is flagged among the sanity checks). The final error is shown too: a linear read-out has the same floor with either loss. The output gradient is computed in closed form from the output's "
              "declared Jacobian (actlab.activations.outputs). Rule: confirmed when, for both tasks, the averaged "
              "training error with cross-entropy is below that with squared error (Welch's t at the 5% level). "
              "Sanity checks, apart: the mean |dL/dz| on the confidently wrong examples at init is smaller with "
              "squared error (that is the sigma' factor, arithmetic, not evidence).")

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        data = load_dataset(s["data"], seed=0)
        x = data.x_train.reshape(data.x_train.shape[0], -1).double()
        labels = data.y_train
        targets = {"binary": (labels >= 5).double()[:, None],
                   "multiclass": torch.nn.functional.one_hot(labels, data.n_classes).double()}
        out: dict[str, Any] = {"tasks": s["tasks"], "lrs": s["lrs"], "steps": s["steps"], "curves": {},
                               "wrong_grad": {}}
        jobs, done = len(s["tasks"]) * 2 * len(s["lrs"]), 0
        for task in s["tasks"]:
            out["curves"][task], out["wrong_grad"][task] = {}, {}
            for loss in LOSSES[task]:
                per_lr, grads = [], []
                for lr in s["lrs"]:
                    runs = [train_readout(x, targets[task], task, loss, lr, s["steps"], s["init_std"], seed)
                            for seed in s["seeds"]]
                    per_lr.append([r[0] for r in runs])
                    grads = [r[1] for r in runs]  # the same at every lr (init only)
                    done += 1
                    progress(done / jobs, f"{task}, {loss}, lr {lr:g}")
                out["curves"][task][loss], out["wrong_grad"][task][loss] = per_lr, grads
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        checks, sanity = [], []
        for task in n["tasks"]:
            mse, xe = LOSSES[task]
            out = OUTPUT[task]
            checks.append(compare(f"{task} ({out}): training error averaged over the run, {xe.upper()} < MSE (each "
                                  "at its best lr)", speed(n, task, xe), speed(n, task, mse), expect="less"))
            for loss in (mse, xe):
                sanity.append(inside_grid(f"{task}, {loss.upper()}: learning rate", best_lr(n, task, loss), n["lrs"]))
            sanity.append(compare(f"{task} ({out}): |dL/dz| on confidently wrong examples at init, MSE < {xe.upper()}",
                                  n["wrong_grad"][task][mse], n["wrong_grad"][task][xe], expect="less", log=True))
        return Verdict.from_checks(checks, sanity=sanity)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """The two losses' runs swapped in every task."""
        out = {**n, "curves": {}, "wrong_grad": {}}
        for task in n["tasks"]:
            mse, xe = LOSSES[task]
            for key in ("curves", "wrong_grad"):
                out[key][task] = {mse: n[key][task][xe], xe: n[key][task][mse]}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for task in n["tasks"]:
            for loss in LOSSES[task]:
                b = best_lr(n, task, loss)
                rows.append({"task (output)": f"{task} ({OUTPUT[task]})", "loss": loss.upper(),
                             "best lr": n["lrs"][b],
                             "training error at the start": fmt_ms([c[0] for c in n["curves"][task][loss][b]]),
                             "training error averaged over the run": fmt_ms(speed(n, task, loss)),
                             "final training error": fmt_ms([c[-1] for c in n["curves"][task][loss][b]]),
                             "|dL/dz| on confidently wrong examples at init": fmt_ms(n["wrong_grad"][task][loss])})
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        axes = fig.subplots(1, len(n["tasks"]), squeeze=False)[0]
        for ax, task in zip(axes, n["tasks"]):
            for loss in LOSSES[task]:
                b = best_lr(n, task, loss)
                c = np.asarray(n["curves"][task][loss][b], dtype=float)
                steps = np.arange(c.shape[1])
                ax.plot(steps, np.nanmean(c, 0), color=COLORS[loss], label=f"{loss.upper()} (lr {n['lrs'][b]:g})")
                ax.fill_between(steps, np.nanmin(c, 0), np.nanmax(c, 0), color=COLORS[loss], alpha=0.2)
            ax.set_title(f"{task}: {OUTPUT[task]} output, saturated start")
            ax.set_xlabel("full-batch gradient step")
            ax.set_ylabel("training error (mean, band = min..max over seeds)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)


EXPERIMENT = OutputLoss()
