"""Zero (or constant) initialisation never breaks the symmetry between hidden units.

If every unit of a layer starts with the same incoming weights, every unit computes the same
output, receives the same gradient and takes the same step: the units stay copies of one another
for ever, and the layer behaves as if it had a single unit (its weight matrix has rank 1).
Random initialisation breaks the tie. We train the same tanh MLP on digits from zero, constant
and Glorot-random weights and measure how different its hidden units end up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from actlab.experiments.base import Experiment, Progress, Verdict, fmt_ms, threshold
from actlab.sweep import Config, Record, train_group

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",         # 8x8 digits: 1437 training images, standardised
        "activation": "tanh",
        "depth": 2,               # hidden layers
        "width": 32,              # units per hidden layer
        "inits": {"zeros": {"scheme": "zeros"},
                  "constant": {"scheme": "constant", "value": 0.05},
                  "random": {"scheme": "xavier_normal"}},
        "lr": 0.1,                # SGD learning rate
        "batch_size": 32,         # examples per SGD step
        "steps": 400,             # SGD steps
        "seeds": [0, 1, 2],
        "identical_below": 1e-4,  # "identical": max pairwise row distance / max row norm below this
        "distinct_above": 0.1,    # "distinct": above this
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "width": 16, "steps": 60, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "width": 64, "steps": 3000, "seeds": [0, 1, 2, 3, 4]}


def symmetry(w: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(max pairwise distance of units' incoming weights / max norm, second / first singular value).

    Each unit is a row ``[w_i, b_i]``; 0 / 0 (all-zero rows) counts as identical and rank 0.
    """
    rows = torch.cat([w, b[:, None]], dim=1).double()
    spread = float(torch.cdist(rows, rows).max() / rows.norm(dim=1).max().clamp_min(1e-300))
    sv = torch.linalg.svdvals(w.double())
    rank_ratio = float(sv[1] / sv[0].clamp_min(1e-300)) if sv.numel() > 1 else 0.0
    return spread, rank_ratio


class ZeroInitSymmetry(Experiment):
    name = "zero_init_symmetry"
    order = 80
    title = "Zero initialisation never breaks symmetry"
    claim = ("With all-zero (or all-equal) initial weights the hidden units of a layer stay identical during "
             "training: the weight matrix stays rank 1 and the net learns like one with a single unit per layer.")
    method = ("A 2-hidden-layer tanh MLP (32 units) on digits, trained with SGD (a fresh permutation of the training set each epoch; every run "
              "at once on actlab's batched engine) from zero weights, constant weights "
              "(0.05) and Glorot normal weights (biases 0). After training, per hidden layer: the largest distance "
              "between two units' incoming weight vectors (bias included) relative to the largest vector's norm, and "
              "the ratio of the second to the first singular value of the weight matrix (0 = rank 1). Confirmed when, "
              "for every seed and layer, zero and constant init leave the units identical (distance ratio < 1e-4, "
              "singular value ratio < 1e-4) while random init leaves them distinct (both > 0.1).")

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        out: dict[str, Any] = {"inits": list(s["inits"]), "depth": s["depth"],
                               "identical_below": s["identical_below"], "distinct_above": s["distinct_above"],
                               "spread": {}, "rank_ratio": {}, "train_error": {}, "loss_curve": {}}
        every = max(s["steps"] // 10, 1)
        configs = [Config.from_dict({"activation": s["activation"], "depth": s["depth"], "width": s["width"],
                                     "init": kw["scheme"], "init_args": {k: v for k, v in kw.items() if k != "scheme"},
                                     "bias_init": 0.0, "lr": s["lr"], "optimiser": "sgd", "data": s["data"],
                                     "seed": seed, "steps": s["steps"], "batch_size": s["batch_size"]})
                   for kw in s["inits"].values() for seed in s["seeds"]]
        results = iter(train_group(configs, Record(every=every, first=every - 1, metrics=("loss", "train_error"),
                                                   keep_params=True),
                                   progress=lambda t: progress(t / s["steps"], f"step {t} of {s['steps']}")))
        for name in s["inits"]:
            spread, rank, err, curve = [], [], [], []
            for _ in s["seeds"]:
                res = next(results)
                per_layer = [symmetry(w, b) for w, b in res.params[:-1]]  # type: ignore[index]
                spread.append([p[0] for p in per_layer])
                rank.append([p[1] for p in per_layer])
                err.append(res.final["train_error"])
                steps, errs = zip(*res.final["train_error_curve"])
                curve.append([list(steps), list(errs)])
            out["spread"][name], out["rank_ratio"][name] = spread, rank
            out["train_error"][name], out["loss_curve"][name] = err, curve
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        lo, hi = n["identical_below"], n["distinct_above"]
        checks = []
        for name in n["inits"]:
            # every seed and layer pooled: the claim is about each layer
            spread = [v for seed in n["spread"][name] for v in seed]
            rank = [v for seed in n["rank_ratio"][name] for v in seed]
            if name == "random":
                checks.append(threshold("random init: units distinct", spread, above=hi))
                checks.append(threshold("random init: weights not rank 1", rank, above=hi))
            else:
                checks.append(threshold(f"{name} init: units identical", spread, below=lo))
                checks.append(threshold(f"{name} init: weights rank 1", rank, below=lo))
        return Verdict.from_checks(checks)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """The random-init runs swapped with the zero-init runs."""
        out = {**n}
        for k in ("spread", "rank_ratio", "train_error", "loss_curve"):
            out[k] = {**n[k], "zeros": n[k]["random"], "random": n[k]["zeros"]}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for name in n["inits"]:
            row: dict[str, Any] = {"init": name}
            for layer in range(n["depth"]):
                row[f"layer {layer + 1}: unit distance"] = fmt_ms([s[layer] for s in n["spread"][name]], 2)
                row[f"layer {layer + 1}: s2/s1"] = fmt_ms([s[layer] for s in n["rank_ratio"][name]], 2)
            row["train error"] = fmt_ms(n["train_error"][name], 3)
            rows.append(row)
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        colors = {"zeros": "#D55E00", "constant": "#E69F00", "random": "#0072B2"}
        inits = n["inits"]
        x = np.arange(n["depth"])
        floor = 1e-17  # exact zeros drawn at the float64 floor so they show on a log axis
        for j, name in enumerate(inits):
            for k, (key, marker) in enumerate((("spread", "o"), ("rank_ratio", "s"))):
                v = np.clip(np.array(n[key][name], dtype=float), floor, None)
                xs = x + (j - 1) * 0.22 + (k - 0.5) * 0.08
                for seed_vals in v:
                    ax1.plot(xs, seed_vals, marker, color=colors.get(name), ms=6, alpha=0.8,
                             mfc="none" if key == "rank_ratio" else colors.get(name))
            ax1.plot([], [], "o", color=colors.get(name), label=f"{name}")
        ax1.plot([], [], "ko", label="unit distance ratio")
        ax1.plot([], [], "ks", mfc="none", label="s2 / s1")
        ax1.axhline(n["identical_below"], color="grey", ls=":", lw=1)
        ax1.axhline(n["distinct_above"], color="grey", ls="--", lw=1)
        ax1.set_yscale("log")
        ax1.set_xticks(x, [f"hidden layer {i + 1}" for i in x])
        ax1.set_ylabel("after training (exact 0 drawn at 1e-17)")
        ax1.set_title("are the hidden units still copies?")
        ax1.legend(fontsize=8, loc="center right")
        for name in inits:
            for steps, err in n["loss_curve"][name]:
                ax2.plot(steps, err, "-", color=colors.get(name), alpha=0.7)
            ax2.plot([], [], "-", color=colors.get(name), label=name)
        ax2.set_xlabel("SGD step")
        ax2.set_ylabel("training error")
        ax2.set_title("what the net can learn")
        ax2.set_ylim(0, 1)
        ax2.legend(fontsize=8)
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)


EXPERIMENT = ZeroInitSymmetry()
