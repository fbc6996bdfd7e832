"""A deep stack of linear layers is one linear layer.

Without a nonlinearity, ``W_L (... (W_2 (W_1 x + b_1) + b_2) ...) + b_L`` multiplies out to
``W x + b`` with ``W = W_L ... W_1``: depth adds parameters, not functions. So a five-layer MLP
with the identity activation can do no better than logistic regression on XOR or two spirals,
while the same MLP with ReLU or tanh fits them. We train all of them (Adam, full batch) and read
the training accuracy, and we multiply the trained identity net's weight matrices to check that
the product reproduces its outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from actlab.lab.data import load_dataset
from actlab.experiments.base import Experiment, Progress, Verdict, fmt_ms, threshold
from actlab.lab.init import init_weights
from actlab._threads import torch_threads
from actlab.lab.models import MLP
from actlab.lab.train import TrainConfig, train

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "datasets": ["xor", "spirals"],        # 2-D sets no straight line separates
        "n": 400,                              # training points per set
        "depth": 5,                            # hidden layers of the deep nets
        "width": 32,                           # units per hidden layer
        "activations": ["identity", "relu", "tanh"],
        "init": "xavier_normal",               # Glorot normal, zero biases
        "steps": 200,                          # Adam steps, full batch
        "lr": 0.03,                            # Adam learning rate
        "seeds": [0, 1, 2],
        "same_as_linear": 0.05,                # decision: |identity net - logistic regression| below this (accuracy)
        "fits_by": 0.15,                       # ... and ReLU / tanh above the identity net by at least this
        "product_tol": 1e-4,                   # ... and the matrix product reproduces the net to this relative error
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "n": 100, "steps": 60, "width": 12, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "n": 1000, "steps": 2000, "seeds": [0, 1, 2, 3, 4]}

LINEAR = "linear"  # logistic regression: the same MLP with no hidden layer
COLORS = {LINEAR: "#777777", "identity": "#CC79A7", "relu": "#009E73", "tanh": "#0072B2"}


def collapse(model: MLP) -> tuple[torch.Tensor, torch.Tensor]:
    """The one affine map ``x -> W x + b`` an identity-activation MLP computes (float64)."""
    w = torch.eye(model.in_features, dtype=torch.float64)
    b = torch.zeros(model.in_features, dtype=torch.float64)
    for lin in model.linear_layers():
        lw = lin.weight.detach().double()
        lb = lin.bias.detach().double() if lin.bias is not None else 0.0
        w, b = lw @ w, lw @ b + lb
    return w, b


class LinearCollapse(Experiment):
    name = "linear_collapse"
    order = 90
    title = "Stacked linear layers collapse into one"
    claim = ("Without a nonlinearity a deep net is one linear map: a 5-layer identity-activation MLP fits XOR and "
             "spirals no better than logistic regression, while the same MLP with ReLU or tanh fits them.")
    source = 'Minsky & Papert 1969 (XOR); Goodfellow, Bengio & Courville 2016, Sec. 6.1'
    source_found = ('A composition of linear maps is linear, so a net without nonlinearity cannot fit XOR.')
    method = ("XOR and two spirals (2-D); MLPs with 5 hidden layers of 32 units and the identity, ReLU or tanh "
              "activation, plus logistic regression (no hidden layer), trained with full-batch Adam; training "
              "accuracy over seeds. The trained identity net's weight matrices are multiplied into one W, b and "
              "its outputs compared with W x + b. Confirmed when, on every data set and seed, the identity net's "
              "accuracy is within 0.05 of logistic regression's and ReLU and tanh beat the identity net by at least "
              "0.15. That the product reproduces the net (relative error below 1e-4) is linear algebra: a sanity "
              "check shown apart, which no longer decides the verdict.")

    settings_by_mode = SETTINGS
    expected_seconds = {"full": 141}  # one core, measured 2026-12-04 (scheduling hint only)

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        with torch_threads(1):  # small nets: one thread is as fast, and does not spin on a busy machine
            arms = [LINEAR, *s["activations"]]
            out: dict[str, Any] = {"datasets": s["datasets"], "arms": arms, "accuracy": {}, "curves": {},
                                   "product_error": {}, "same_as_linear": s["same_as_linear"], "fits_by": s["fits_by"],
                                   "product_tol": s["product_tol"]}
            jobs, done = len(s["datasets"]) * len(arms) * len(s["seeds"]), 0
            for ds in s["datasets"]:
                out["accuracy"][ds], out["curves"][ds], out["product_error"][ds] = {}, {}, []
                for arm in arms:
                    accs, curves = [], []
                    for seed in s["seeds"]:
                        data = load_dataset(ds, n=s["n"], seed=seed)
                        depth = 0 if arm == LINEAR else s["depth"]
                        act = "identity" if arm == LINEAR else arm
                        model = MLP(2, 2, depth=depth, width=s["width"], activation=act)
                        init_weights(model, s["init"], seed=seed)
                        cfg = TrainConfig(loss="ce", optimiser="adam", lr=s["lr"], batch_size=None, steps=s["steps"],
                                          seed=seed, eval_every=max(s["steps"] // 10, 1), threads=1)
                        res = train(model, data, cfg)
                        accs.append(1.0 - res.final["train_error"])
                        curves.append([1.0 - e for e in res.train_error])
                        if arm == "identity":
                            w, b = collapse(model)
                            x = torch.cat([data.x_train, data.x_test]).double()
                            with torch.no_grad():
                                net = model.double()(x)
                            one = x @ w.T + b
                            out["product_error"][ds].append(float((net - one).norm() / net.norm()))
                        done += 1
                        progress(done / jobs, f"{ds} {arm} seed {seed}")
                    out["accuracy"][ds][arm], out["curves"][ds][arm] = accs, curves
                out["curve_steps"] = res.eval_steps
            return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        checks, sanity = [], []
        for ds in n["datasets"]:
            acc = n["accuracy"][ds]
            gap = [abs(a - b) for a, b in zip(acc["identity"], acc[LINEAR])]
            checks.append(threshold(f"{ds}: deep identity net ~ logistic regression (|accuracy gap|)", gap,
                                    below=n["same_as_linear"]))
            for act in n["arms"]:
                if act in (LINEAR, "identity"):
                    continue
                lift = [a - b for a, b in zip(acc[act], acc["identity"])]
                checks.append(threshold(f"{ds}: {act} net beats the identity net (accuracy gain)", lift,
                                        above=n["fits_by"]))
            # The product of the layers is the net by linear algebra: a sanity check of the code, not evidence.
            sanity.append(threshold(f"{ds}: W_L...W_1 x + b reproduces the identity net (relative error)",
                                    n["product_error"][ds], below=n["product_tol"]))
        return Verdict.from_checks(checks, sanity=sanity)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        # As if depth alone had made the identity net nonlinear: it fits like ReLU (and no product reproduces it).
        acc = {ds: {**a, "identity": a["relu"]} for ds, a in n["accuracy"].items()}
        return {**n, "accuracy": acc, "product_error": {ds: [1.0 for _ in v] for ds, v in n["product_error"].items()}}

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for ds in n["datasets"]:
            row: dict[str, Any] = {"data": ds}
            for arm in n["arms"]:
                label = "logistic regression" if arm == LINEAR else f"5-layer {arm}"
                row[f"{label} train acc"] = fmt_ms(n["accuracy"][ds][arm])
            row["product rel. error"] = fmt_ms(n["product_error"][ds], 2)
            rows.append(row)
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        axes = fig.subplots(1, len(n["datasets"]), sharey=True, squeeze=False)[0]
        for ax, ds in zip(axes, n["datasets"]):
            for arm in n["arms"]:
                c = np.asarray(n["curves"][ds][arm], dtype=float)
                m, sd = c.mean(0), c.std(0)
                label = "logistic regression" if arm == LINEAR else f"5 layers, {arm}"
                ax.plot(n["curve_steps"], m, marker="o", ms=3, color=COLORS.get(arm), label=label,
                        ls="--" if arm == LINEAR else "-")
                ax.fill_between(n["curve_steps"], m - sd, m + sd, color=COLORS.get(arm), alpha=0.15)
            err = float(np.mean(n["product_error"][ds]))
            ax.set_title(f"{ds}: train accuracy (product rel. error {err:.1e})")
            ax.set_xlabel("Adam step (full batch)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("training accuracy (mean ± std over seeds)")
        axes[0].legend(loc="lower right", fontsize=8)


EXPERIMENT = LinearCollapse()
