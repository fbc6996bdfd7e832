"""ReLU units die with a high learning rate or a very negative bias; leaky ReLU, PReLU and ELU do not.

A ReLU unit whose pre-activation is negative for every input has zero derivative everywhere: no
gradient reaches its weights, so it never comes back. A large update (high learning rate) or a
very negative bias can put it there. Leaky ReLU, PReLU and ELU keep a non-zero slope for negative
inputs, so their units always get some gradient. We train the same MLP on digits with each
activation and count, on the whole training set at the end, the units that are dead (zero
derivative for every example) and those that are merely off (negative pre-activation for every
example).

Every run (activation x arm x seed, PReLU's learned slopes included) trains at once on the batched
engine (:func:`actlab.sweep.train_group`), which measures the unit states on the whole training
set at init and at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actlab.experiments.base import Experiment, Progress, Verdict, compare, fmt_ms
from actlab.sweep import Config, Record, train_group

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",           # 8x8 digits: 1437 training images, standardised
        "activations": ["relu", "leaky_relu", "prelu", "elu"],
        "depth": 3,                 # hidden layers
        "width": 64,                # units per hidden layer
        "init": "he_normal",        # He et al. 2015 (with each activation's leaky slope)
        "optimiser": "adam",        # Adam: a high lr makes big steps without overflowing
        "lrs": [0.001, 0.01, 0.1],  # learning rates swept (bias init 0)
        "bias": -3.0,               # the negative-bias arm: every bias starts here ...
        "bias_lr": 0.001,           # ... trained at this (safe) learning rate
        "steps": 150,               # optimiser steps per run
        "batch_size": 32,           # examples per step (a fresh permutation each epoch)
        "seeds": [0, 1, 2],
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "lrs": [0.001, 0.1], "depth": 2, "width": 24, "steps": 50, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3], "steps": 2000,
                    "seeds": [0, 1, 2, 3, 4]}

COLORS = {"relu": "#D55E00", "leaky_relu": "#0072B2", "prelu": "#CC79A7", "elu": "#009E73"}


class DyingRelu(Experiment):
    name = "dying_relu"
    order = 70
    title = "ReLU units die; leaky ReLU, PReLU and ELU do not"
    claim = ("ReLU units die (output zero, get zero gradient, for every input) when the learning rate is high or "
             "the bias very negative; leaky ReLU, PReLU and ELU units do not.")
    method = ("A 3-hidden-layer MLP (64 units, He normal init) on digits trained with Adam for 150 steps at "
              "learning rates 0.001 to 0.1 (biases 0), and at lr 0.001 with every bias started at -3 (all runs, PReLU's "
              "learnt slopes (one per layer) included, trained at once on actlab's batched engine, a fresh permutation "
              "of the training set each epoch). At the end, on "
              "the whole training set: dead units (f'(z) = 0 for every example) and off units (z <= 0 for every "
              "example), as fractions of the hidden units. Confirmed when ReLU's dead fraction at the highest lr "
              "exceeds its dead fraction at the lowest lr, and, at the highest lr and in the bias -3 arm, exceeds each "
              "of leaky ReLU's, PReLU's and ELU's (gaps larger than two standard errors over seeds). ELU saturates on "
              "the left, so a unit pushed far below zero is nearly dead too: actlab computes its derivative from the "
              "output, y + alpha, which is exactly 0 in float32 below z = -17 (torch's exp(z) is below 1e-7 there); "
              "such units count as dead.")

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        keys = ("dead", "off", "dead_init", "off_init", "train_error")
        arms = [(lr, 0.0) for lr in s["lrs"]] + [(s["bias_lr"], s["bias"])]
        runs = self._engine_runs(s, arms, progress)
        out: dict[str, Any] = {"activations": s["activations"], "lrs": s["lrs"], "bias": s["bias"],
                               "bias_lr": s["bias_lr"], "lr_sweep": {}, "negative_bias": {}}
        for act in s["activations"]:
            per_arm = [[runs[act, lr, bias, seed] for seed in s["seeds"]] for lr, bias in arms]
            out["lr_sweep"][act] = {k: [[r[k] for r in arm] for arm in per_arm[:-1]] for k in keys}
            out["negative_bias"][act] = {k: [r[k] for r in per_arm[-1]] for k in keys}
        return out

    def _engine_runs(self, s: dict[str, Any], arms: list[tuple[float, float]], progress: Progress) -> dict:
        """Every run (activation x arm x seed) as one stack on the engine (PReLU's slopes are trained there)."""
        keys = [(act, lr, bias, seed) for act in s["activations"] for lr, bias in arms for seed in s["seeds"]]
        configs = [Config.from_dict({"activation": act, "depth": s["depth"], "width": s["width"], "init": s["init"],
                                     "bias_init": bias, "lr": lr, "optimiser": s["optimiser"], "data": s["data"],
                                     "seed": seed, "steps": s["steps"], "batch_size": s["batch_size"]})
                   for act, lr, bias, seed in keys]
        results = train_group(configs, Record(every=s["steps"], metrics=("loss", "unit_states")),
                              progress=lambda t: progress(t / s["steps"], f"engine: step {t}"))
        nan = float("nan")
        out = {}
        for key, r in zip(keys, results):
            f = r.final
            out[key] = {"dead": nan if f["dead_on_data"] is None else f["dead_on_data"],
                        "off": nan if f["off_units"] is None else f["off_units"],
                        "dead_init": f["dead_on_data_init"], "off_init": f["off_units_init"],
                        "train_error": f["train_error"],
                        "diverged": f["diverged"]}
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        relu = n["lr_sweep"]["relu"]["dead"]
        hi, lo = f"lr {n['lrs'][-1]:g}", f"lr {n['lrs'][0]:g}"
        checks = [compare(f"ReLU dead fraction at {hi} > at {lo}", relu[-1], relu[0], expect="greater")]
        for act in n["activations"]:
            if act == "relu":
                continue
            checks.append(compare(f"dead fraction at {hi}: ReLU > {act}", relu[-1], n["lr_sweep"][act]["dead"][-1],
                                  expect="greater"))
            checks.append(compare(f"dead fraction with bias {n['bias']:g}: ReLU > {act}",
                                  n["negative_bias"]["relu"]["dead"], n["negative_bias"][act]["dead"],
                                  expect="greater"))
        return Verdict.from_checks(checks)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """ReLU's runs swapped with leaky ReLU's."""
        out = {**n}
        for k in ("lr_sweep", "negative_bias"):
            out[k] = {**n[k], "relu": n[k]["leaky_relu"], "leaky_relu": n[k]["relu"]}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for act in n["activations"]:
            for i, lr in enumerate(n["lrs"]):
                sw = n["lr_sweep"][act]
                rows.append({"activation": act, "setting": f"lr {lr:g}, bias 0", "dead": fmt_ms(sw["dead"][i], 2),
                             "off": fmt_ms(sw["off"][i], 2), "train error": fmt_ms(sw["train_error"][i], 2)})
            nb = n["negative_bias"][act]
            rows.append({"activation": act, "setting": f"lr {n['bias_lr']:g}, bias {n['bias']:g}",
                         "dead": f"{fmt_ms(nb['dead'], 2)} (init {fmt_ms(nb['dead_init'], 2)})",
                         "off": f"{fmt_ms(nb['off'], 2)} (init {fmt_ms(nb['off_init'], 2)})",
                         "train error": fmt_ms(nb["train_error"], 2)})
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
        acts = n["activations"]
        for act in acts:
            v = np.array(n["lr_sweep"][act]["dead"], dtype=float)
            ax1.errorbar(n["lrs"], np.nanmean(v, 1), np.nan_to_num(np.nanstd(v, 1)), fmt="o-", capsize=3,
                         color=COLORS.get(act), label=f"{act}: dead")
            o = np.array(n["lr_sweep"][act]["off"], dtype=float)
            ax1.plot(n["lrs"], np.nanmean(o, 1), ":", color=COLORS.get(act), lw=1.2)
        ax1.plot([], [], "k:", lw=1.2, label="dotted: off (z <= 0 for all inputs)")
        ax1.set_xscale("log")
        ax1.set_xlabel("Adam learning rate (biases start at 0)")
        ax1.set_ylabel("fraction of hidden units")
        ax1.set_title("dead units vs learning rate")
        ax1.set_ylim(-0.03, 1.03)
        ax1.legend(fontsize=8)
        x = np.arange(len(acts))
        for j, (key, label, alpha) in enumerate((("off_init", "off at init", 0.2), ("off", "off at end", 0.5),
                                                  ("dead", "dead at end", 1.0))):
            vals = [np.nanmean(np.array(n["negative_bias"][a][key], dtype=float)) for a in acts]
            errs = [np.nan_to_num(np.nanstd(np.array(n["negative_bias"][a][key], dtype=float))) for a in acts]
            ax2.bar(x + (j - 1) * 0.27, vals, 0.27, yerr=errs, capsize=2, alpha=alpha,
                    color=[COLORS.get(a) for a in acts], edgecolor="k", lw=0.5, label=label)
        ax2.set_xticks(x, acts)
        ax2.set_ylim(0, 1.03)
        ax2.set_ylabel("fraction of hidden units")
        ax2.set_title(f"biases started at {n['bias']:g} (lr {n['bias_lr']:g})")
        ax2.legend(fontsize=8)
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)


EXPERIMENT = DyingRelu()
