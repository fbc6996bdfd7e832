"""A saturating output needs a matching loss: sigmoid with cross-entropy, not with squared error.

With ``y_hat = sigma(z)`` and the squared error ``(y_hat - y)^2 / 2``, the gradient at the output's
pre-activation is ``(y_hat - y) sigma'(z)``: when the unit is confidently wrong (``y_hat`` near 0
for ``y = 1``), ``sigma'(z)`` is near 0 and it learns slowest exactly where it is most wrong. With
the binary cross-entropy the ``sigma'`` factor cancels and the gradient is ``y_hat - y``. The same
holds for softmax with the multinomial cross-entropy (gradient ``p - onehot(y)``) against softmax
with the squared error (``J_softmax^T (p - onehot(y))``). We train the read-out alone (no hidden
layer: the output nonlinearity is the only one) on digits, started with large weights so that
many outputs are saturated and confidently wrong, and follow those examples: how many steps until
each is first classified right, with squared error's learning rate scaled by 1 / (the output's slope
at z = 0) so that the two losses differ by the saturation factor alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from actlab.activations.outputs import get_output
from actlab.experiments.base import Experiment, Progress, Verdict, compare, fmt_ms, threshold
from actlab.lab.data import load_dataset

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",                  # scikit-learn 8x8 digits: 1437 training images, standardised
        "tasks": ["binary", "multiclass"],  # binary: digit >= 5 (sigmoid output); multiclass: 10 digits (softmax)
        "init_std": 1.0,                   # read-out weights N(0, init_std^2): |z| ~ 8 on 64 inputs, saturated
        # cross-entropy's full-batch learning rates; squared error gets each times 1 / (the output's slope at the
        # unsaturated point): 4 for the sigmoid (sigma'(0) = 1/4), K = 10 for the softmax (J at uniform p is
        # (I - 11^T/K) / K), so both losses take the same step on an unsaturated output and differ by saturation alone
        "lrs": [0.3, 1.0, 3.0, 10.0],
        "steps": 200,                      # full-batch steps
        "seeds": [0, 1, 2],
        "wrong": 0.1,                      # "confidently wrong" at init: probability of the true class below this
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "lrs": [1.0, 3.0], "steps": 40, "seeds": [0, 1, 2]}
SETTINGS["full"] = {**SETTINGS["quick"], "seeds": list(range(10))}

OUTPUT = {"binary": "sigmoid", "multiclass": "softmax"}
LOSSES = {"binary": ("mse", "bce"), "multiclass": ("mse", "ce")}
COLORS = {"mse": "#D55E00", "bce": "#0072B2", "ce": "#0072B2"}


def mse_factor(task: str, k: int) -> float:
    """Squared error's learning-rate factor: 1 / the output's slope where it is not saturated (z = 0).

    The sigmoid's ``sigma'(0) = 1/4``; the softmax's Jacobian at uniform ``p`` maps ``p - y`` to
    ``(p - y) / K`` (as ``sum(p - y) = 0``), so ``K`` for ``K`` classes."""
    return 4.0 if task == "binary" else float(k)
#: squared error's learning-rate factor: 1 / the output's slope where it is not saturated (z = 0)
MSE_FACTOR = {"binary": 4.0, "multiclass": 10.0}


def output_gradient(task: str, loss: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``dL/dz`` per example, in closed form from the output spec (``y``: targets, one-hot for multiclass).

    Squared error ``sum_i (y_hat_i - y_i)^2 / 2`` gives ``J^T (y_hat - y)`` (the vjp of the
    residual); the matching cross-entropy gives the residual ``y_hat - y`` itself.
    """
    spec = get_output(OUTPUT[task])
    p = spec.forward(z)
    return spec.vjp(p - y, p) if loss == "mse" else p - y


def autograd_gradient(task: str, loss: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``dL/dz`` per example from autograd on the per-example loss (torch's own cross-entropies)."""
    za = z.detach().clone().requires_grad_(True)
    if loss == "mse":
        per = ((get_output(OUTPUT[task]).forward(za) - y) ** 2).sum(1) / 2
    elif task == "binary":
        per = torch.nn.functional.binary_cross_entropy_with_logits(za, y, reduction="none").sum(1)
    else:
        per = torch.nn.functional.cross_entropy(za, y.argmax(1), reduction="none")
    (grad,) = torch.autograd.grad(per.sum(), za)
    return grad


def train_readout(x: torch.Tensor, y: torch.Tensor, task: str, loss: str, lr: float, steps: int, std: float,
                  seed: int, wrong: float) -> dict[str, Any]:
    """Full-batch gradient descent on a linear read-out from a saturated start (float64 throughout).

    Returns, for the examples confidently wrong at init (true-class probability below ``wrong``):
    how many there are, the mean step at which they are first classified right (``steps + 1`` for one
    never right), the share of them right at least once, the share not yet fixed after each step,
    their mean ``|dL/dz|`` at init, and the largest gap between the closed-form ``dL/dz`` and
    autograd's at init; and the whole training set's error at the end (NaN if the run diverged).
    """
    g = torch.Generator().manual_seed(seed)
    k = y.shape[1]
    w = torch.randn(x.shape[1], k, generator=g, dtype=torch.float64) * std
    b = torch.zeros(k, dtype=torch.float64)
    truth = y[:, 0].long() if task == "binary" else y.argmax(1)
    z = x @ w + b
    p = get_output(OUTPUT[task]).forward(z)
    p_true = (p * y + (1 - p) * (1 - y))[:, 0] if task == "binary" else (p * y).sum(1)
    mask = p_true < wrong
    dz = output_gradient(task, loss, z, y)
    out: dict[str, Any] = {
        "wrong": int(mask.sum()),
        "wrong_grad": float(dz[mask].norm(dim=1).mean()) if mask.any() else math.nan,
        "autograd_gap": float((dz - autograd_gradient(task, loss, z, y)).abs().max()),
    }
    first = torch.full((x.shape[0],), float(steps + 1), dtype=torch.float64)
    not_fixed: list[float] = []
    final_error = math.nan
    for t in range(steps + 1):
        if t:
            z = x @ w + b
            dz = output_gradient(task, loss, z, y)
        right = ((z[:, 0] > 0).long() if task == "binary" else z.argmax(1)) == truth
        first[mask & right & (first > steps)] = t
        not_fixed.append(float((first[mask] > t).double().mean()) if mask.any() else math.nan)
        if t == steps:
            final_error = float((~right).double().mean())
            break
        w -= lr * x.T @ dz / x.shape[0]
        b -= lr * dz.mean(0)
        if not torch.isfinite(w).all():  # diverged: what is not fixed yet stays unfixed
            not_fixed += [not_fixed[-1]] * (steps - t)
            break
    out.update(fix_steps=float(first[mask].mean()) if mask.any() else math.nan,
               fixed_share=float((first[mask] <= steps).double().mean()) if mask.any() else math.nan,
               not_fixed=not_fixed, final_error=final_error)
    return out


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
    proxy_note = ("Nielsen trains one sigmoid neuron on one input; here a linear read-out on the 1437 digits images "
                  "(binary: sigmoid; 10 digits: softmax), started saturated, and the examples it gets confidently "
                  "wrong at the start are followed.")
    expected_seconds = {"quick": 16.0, "full": 69.0}
    method = ("Digits (standardised); a linear read-out (no hidden layer: the output nonlinearity is the only one) "
              "with a sigmoid output for digit >= 5 (binary) or a softmax over the 10 digits (multiclass), weights "
              "N(0, 1), so |z| ~ 8 and many outputs start saturated - as in the textbook argument. The examples it "
              "gets confidently wrong at init (true-class probability below 0.1) are the ones the claim is about; "
              "for each, the full-batch gradient-descent step at which it is first classified right (never within "
              "the 200 steps counts as 201) is recorded, and a run's speed is their mean. Learning rates: "
              "cross-entropy at lr, squared error (on the probabilities, one-hot targets) at lr / sigma'(0) = 4 lr "
              "(softmax: K lr = 10 lr, the inverse of its Jacobian's scale at uniform p), so the two losses take "
              "the same step on an unsaturated output and differ only by the saturation factor the claim names; a "
              "larger squared-error lr that speeds up the average example (which is how tuning each loss's lr "
              "let squared error win on the whole-set error) is a different question. The comparison is made at "
              "each lr of a grid of 4 (0.3 to 10): every one must agree. Rule: confirmed when, for both tasks and "
              "every lr, the confidently wrong examples are fixed sooner with cross-entropy (mean first-right step, "
              "Welch's t on log10 at the 5% level; seeds are weight draws). Sanity checks, apart: the closed-form "
              "dL/dz (from the output's declared Jacobian, actlab.activations.outputs) equals autograd's, and at "
              "init |dL/dz| on those examples is ~0 with squared error (the sigma' factor) and ~|y_hat - y| ~ 1 "
              "with cross-entropy (arithmetic, not evidence). The whole set's final error is shown outside the rule.")

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        data = load_dataset(s["data"], seed=0)
        x = data.x_train.reshape(data.x_train.shape[0], -1).double()
        labels = data.y_train
        targets = {"binary": (labels >= 5).double()[:, None],
                   "multiclass": torch.nn.functional.one_hot(labels, data.n_classes).double()}
        keys = ("fix_steps", "fixed_share", "final_error", "not_fixed")
        out: dict[str, Any] = {"tasks": s["tasks"], "lrs": s["lrs"], "steps": s["steps"], "wrong_below": s["wrong"],
                               "factor": {}, "wrong": {}, "wrong_grad": {}, "autograd_gap": {},
                               **{key: {} for key in keys}}
        jobs, done = len(s["tasks"]) * 2 * len(s["lrs"]), 0
        for task in s["tasks"]:
            factor = mse_factor(task, targets[task].shape[1])
            out["factor"][task] = factor
            for key in (*keys, "wrong_grad", "autograd_gap"):
                out[key][task] = {}
            for loss in LOSSES[task]:
                per_lr: dict[str, list] = {key: [] for key in keys}
                for lr in s["lrs"]:
                    runs = [train_readout(x, targets[task], task, loss, lr * (factor if loss == "mse" else 1.0),
                                          s["steps"], s["init_std"], seed, s["wrong"]) for seed in s["seeds"]]
                    for key in keys:
                        per_lr[key].append([r[key] for r in runs])
                    done += 1
                    progress(done / jobs, f"{task}, {loss}, lr {lr:g}")
                for key in keys:
                    out[key][task][loss] = per_lr[key]
                # init only: the same at every lr
                out["wrong"][task] = [r["wrong"] for r in runs]
                out["wrong_grad"][task][loss] = [r["wrong_grad"] for r in runs]
                out["autograd_gap"][task][loss] = [r["autograd_gap"] for r in runs]
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        checks, sanity = [], []
        for task in n["tasks"]:
            mse, xe = LOSSES[task]
            out = OUTPUT[task]
            for i, lr in enumerate(n["lrs"]):
                checks.append(compare(
                    f"{task} ({out}), lr {lr:g} ({xe.upper()}) / {lr * n['factor'][task]:g} (MSE): mean step at which "
                    f"a confidently wrong example is first right, {xe.upper()} < MSE",
                    n["fix_steps"][task][xe][i], n["fix_steps"][task][mse][i], expect="less", log=True))
            for loss in (mse, xe):
                sanity.append(threshold(f"{task}, {loss.upper()}: closed-form dL/dz = autograd's (largest gap)",
                                        n["autograd_gap"][task][loss], below=1e-9))
            sanity.append(compare(f"{task} ({out}): |dL/dz| on confidently wrong examples at init, MSE < {xe.upper()}",
                                  n["wrong_grad"][task][mse], n["wrong_grad"][task][xe], expect="less", log=True))
        return Verdict.from_checks(checks, sanity=sanity)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """The two losses' runs swapped in every task."""
        out = dict(n)
        for key in ("fix_steps", "fixed_share", "final_error", "not_fixed", "wrong_grad", "autograd_gap"):
            out[key] = {task: {LOSSES[task][0]: n[key][task][LOSSES[task][1]],
                               LOSSES[task][1]: n[key][task][LOSSES[task][0]]} for task in n["tasks"]}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for task in n["tasks"]:
            for loss in LOSSES[task]:
                f = n["factor"][task] if loss == "mse" else 1.0
                for i, lr in enumerate(n["lrs"]):
                    rows.append({"task (output)": f"{task} ({OUTPUT[task]})", "loss": loss.upper(), "lr": lr * f,
                                 "confidently wrong at init (of the training set)": fmt_ms(n["wrong"][task]),
                                 "mean step first right (cap steps + 1)": fmt_ms(n["fix_steps"][task][loss][i]),
                                 "share right within the run": fmt_ms(n["fixed_share"][task][loss][i]),
                                 "whole set: final training error": fmt_ms(n["final_error"][task][loss][i]),
                                 "|dL/dz| on them at init": fmt_ms(n["wrong_grad"][task][loss])})
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        axes = fig.subplots(1, len(n["tasks"]), squeeze=False)[0]
        for ax, task in zip(axes, n["tasks"]):
            for loss in LOSSES[task]:
                f = n["factor"][task] if loss == "mse" else 1.0
                for i, lr in enumerate(n["lrs"]):
                    c = np.asarray(n["not_fixed"][task][loss][i], dtype=float)
                    ax.plot(np.arange(c.shape[1]), np.nanmean(c, 0), color=COLORS[loss],
                            alpha=0.35 + 0.65 * (i + 1) / len(n["lrs"]), label=f"{loss.upper()} lr {lr * f:g}")
            ax.set_title(f"{task}: {OUTPUT[task]} output, saturated start", fontsize=10)
            ax.set_xlabel("full-batch gradient step")
            ax.set_ylabel("confidently wrong examples not yet right (share, mean)")
            ax.set_xscale("symlog", linthresh=1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, ncol=2)


EXPERIMENT = OutputLoss()
