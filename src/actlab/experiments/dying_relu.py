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

import math
import warnings
from typing import Any

import numpy as np
import torch

from actlab.experiments.base import Check, Experiment, Progress, Verdict, compare, fmt_ms, threshold
from actlab.lab.data import load_dataset
from actlab.probe.quantities import module_derivative
from actlab.probe.quantities.inactive import inactive_units
from actlab.sweep import Config, Record, lab_model, train_group

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",           # 8x8 digits: 1437 training images, standardised
        "activations": ["relu", "leaky_relu", "prelu", "elu"],
        "depth": 3,                 # hidden layers
        "width": 64,                # units per hidden layer
        "init": "he_normal",        # He et al. 2015 (with each activation's leaky slope)
        "optimiser": "sgd",         # plain SGD, where the classic story is told (Adam at lr 0.1 breaks the whole net)
        "lrs": [0.01, 0.1, 0.5, 1.0],  # learning rates swept (bias init 0); 1.0 diverges on most seeds
        "bias": -3.0,               # the negative-bias arm: every bias starts here ...
        "bias_lr": 0.01,            # ... trained at this (safe) learning rate
        "steps": 600,               # optimiser steps per run (at 150 the bias -3 units had not yet died)
        "batch_size": 32,           # examples per step (a fresh permutation each epoch)
        "seeds": [0, 1, 2, 3, 4],
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "lrs": [0.01, 1.0], "depth": 2, "width": 24, "steps": 50, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "lrs": [0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 1.0, 2.0], "steps": 2000,
                    "seeds": [0, 1, 2, 3, 4]}

def dead_units(model: Any, x: torch.Tensor) -> list[torch.Tensor]:
    """Per hidden layer, which units are dead on ``x``: f'(z) = 0 on every example (the one definition)."""
    with torch.no_grad():
        _, pre, _ = model.forward_all(x)
    return [inactive_units(module_derivative(a, z).abs()) for a, z in zip(model.activations(), pre)]


def highest_stable(lrs: list[float], diverged: list[list[bool]]) -> int | None:
    """Index of the highest learning rate whose runs stayed finite on every seed (None if none did).

    The rule's "high learning rate": a diverged run (NaN / Inf loss) has no end state to count dead
    units in, so the comparison is made at the highest lr at which training still runs."""
    ok = [i for i, d in enumerate(diverged) if not any(d)]
    return max(ok, key=lambda i: lrs[i]) if ok else None


def _n_diverged(n: dict[str, Any], act: str, i: int) -> int:
    d = n["lr_sweep"][act].get("diverged")
    if d is not None:
        return int(sum(bool(v) for v in d[i]))
    return int(sum(v is None for v in n["lr_sweep"][act]["died"][i]))  # older numbers: a diverged run has died None


def pooled_died(runs: list[Any]) -> list[float]:
    """Per seed, the share of all hidden units that died during training (NaN for a diverged run)."""
    return [float(np.mean(r)) if r is not None else math.nan for r in runs]


def _per_layer(runs: list[Any]) -> str:
    """Mean over finite seeds of each layer's share of units that died, e.g. "0, 0.19, 0.31 (2/5)"."""
    ok = [r for r in runs if r is not None]
    if not ok:
        return "n/a" if all(r is None for r in runs) else ""
    means = np.mean(np.asarray(ok, dtype=float), axis=0)
    return ", ".join(f"{m:.2g}" for m in means) + (f" ({len(ok)}/{len(runs)})" if len(ok) != len(runs) else "")


COLORS = {"relu": "#D55E00", "leaky_relu": "#0072B2", "prelu": "#CC79A7", "elu": "#009E73"}


class DyingRelu(Experiment):
    name = "dying_relu"
    order = 70
    # one core, measured 2026-12-04 under load average 4.3-6.8 on the 2 shared cores: quick 14.2 s, full 88.6 s; a scheduling hint only
    expected_seconds = {"quick": 14, "full": 89}
    title = "ReLU units die; leaky ReLU, PReLU and ELU do not"
    claim = ("ReLU units die (output zero, get zero gradient, for every input) when the learning rate is high or "
             "the bias very negative; leaky ReLU, PReLU and ELU units do not.")
    source = 'Maas, Hannun & Ng 2013 (leaky ReLU); CS231n notes on ReLU'
    source_found = ('With a learning rate set too high, as much as 40% of a ReLU network can die (CS231n); leaky units keep a gradient for negative inputs (Maas et al.).')
    method = ("A 3-hidden-layer MLP (64 units, He normal init) on digits trained with plain SGD for 600 steps at "
              "learning rates 0.01 to 1.0 (full mode: 2000 steps at 0.003 to 2.0; biases 0; the top of the grid "
              "diverges), and at lr 0.01 with every "
              "bias started at -3 (all runs trained at once on actlab's batched engine, a fresh permutation "
              "of the training set each epoch; a diverged run is reported, not counted). Per hidden layer, on the whole training set, "
              "the units that died during training: alive at init (f'(z) != 0 on some example) and dead at the end "
              "(f'(z) = 0 on every example), so units born dead do not count. Rule: confirmed when the share of "
              "ReLU units that died at the high lr - the highest lr of the grid at which no ReLU run diverged (a "
              "diverged run, NaN / Inf loss, has no end state to count; diverged runs are reported per lr) - exceeds "
              "that at the lowest lr, and with biases started at -3 "
              "exceeds that with biases 0 (each Welch's t at the 5% level). Leaky ReLU and PReLU cannot have dead "
              "units (f' > 0 everywhere): their zero dead fractions are sanity checks. ELU's f' = alpha e^z is "
              "never 0 either; actlab computes it from the output, y + alpha, which is exactly 0 in float32 below "
              "z ~ -17, so ELU units that come to lie below that on every example are reported apart as "
              "numerically dead (float32 underflow), not as dead. Before, the runs used Adam (lr 0.1 broke the "
              "whole net), counted born-dead units, and the definitional comparisons decided the verdict.")

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        keys = ("dead", "off", "dead_init", "off_init", "train_error", "died", "diverged")
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
        results = train_group(configs, Record(every=s["steps"], metrics=("loss", "unit_states"), keep_params=True),
                              progress=lambda t: progress(t / s["steps"], f"engine: step {t}"))
        data = load_dataset(s["data"], seed=0)
        out = {}
        for key, c, r in zip(keys, configs, results):
            f = r.final
            died: list[float] | None = None
            if key[0] in ("relu", "elu") and r.params is not None and not r.diverged:
                # Units alive at init (f' != 0 on some example) and dead at the end (f' = 0 on every
                # example), per hidden layer: the units that died during training, not those born dead.
                start = dead_units(lab_model(c, data.in_features, data.out_features, r.params_init), data.x_train)
                end = dead_units(lab_model(c, data.in_features, data.out_features, r.params), data.x_train)
                died = [float((e & ~b).double().mean()) for b, e in zip(start, end)]
            # a diverged run's end is not measured: NaN in the result, nan / None here as before
            out[key] = {"dead": f["dead_on_data"], "off": f["off_units"],
                        "dead_init": f["dead_on_data_init"], "off_init": f["off_units_init"],
                        "train_error": None if r.diverged else f["train_error"],
                        "diverged": r.diverged, "died": died}
        return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        relu = [pooled_died(arm) for arm in n["lr_sweep"]["relu"]["died"]]
        lrs = n["lrs"]
        diverged = [[_n_diverged(n, "relu", i) > 0] for i in range(len(lrs))]
        top = highest_stable(lrs, diverged)
        lo = f"lr {lrs[0]:g}"
        base = relu[lrs.index(n["bias_lr"])] if n["bias_lr"] in lrs else relu[0]
        # The rule: ReLU units die (go from alive to dead during training) with a high learning rate or a
        # very negative bias. Both clauses can fail; units born dead do not count. The high learning rate is
        # the highest of the grid at which no ReLU run diverged (a diverged run has no end state to count).
        if top is None or top == 0:
            first = Check(f"ReLU units that died in training, highest lr with no diverged run > {lo}", "unclear",
                          "no learning rate above the lowest kept every run finite", test="Welch t, two-sided 95% CI")
        else:
            first = compare(f"ReLU units that died in training, lr {lrs[top]:g} (the highest lr with no diverged "
                            f"run) > {lo}", relu[top], relu[0], expect="greater")
        checks = [first,
                  compare(f"ReLU units that died in training, bias {n['bias']:g} > bias 0 (both lr {n['bias_lr']:g})",
                          pooled_died(n["negative_bias"]["relu"]["died"]), base, expect="greater")]
        # Leaky ReLU and PReLU (slope > 0) and ELU (f' = alpha e^z > 0) cannot have f' = 0: "they do not
        # die" holds by definition, so it is shown as a sanity check. ELU's f' does underflow to 0 in
        # float32 below z ~ -17 (actlab computes it from the output y + alpha): such units are reported
        # apart as numerically dead, never as dead.
        sanity = []
        for act in n["activations"]:
            if act in ("relu", "elu"):
                continue
            i = highest_stable(lrs, [[_n_diverged(n, act, k) > 0] for k in range(len(lrs))])
            if i is not None:
                sanity.append(threshold(f"{act}: dead fraction at lr {lrs[i]:g}, its highest lr with no diverged "
                                        "run (0 by definition)", n["lr_sweep"][act]["dead"][i], below=1e-12))
        div = [f"lr {lr:g} {_n_diverged(n, 'relu', i)}/{len(n['lr_sweep']['relu']['died'][i])}"
               for i, lr in enumerate(lrs) if _n_diverged(n, "relu", i)]
        note = "; ".join(x for x in (self._elu_note(n), "ReLU runs that diverged (NaN / Inf loss; their units are "
                                     "not counted), each a result: " + ", ".join(div) if div else "") if x)
        return Verdict.from_checks(checks, sanity=sanity, note=note)

    @staticmethod
    def _elu_note(n: dict[str, Any]) -> str:
        if "elu" not in n["activations"]:
            return ""
        i = highest_stable(n["lrs"], [[_n_diverged(n, "elu", k) > 0] for k in range(len(n["lrs"]))])
        i = len(n["lrs"]) - 1 if i is None else i
        hi = fmt_ms(pooled_died(n["lr_sweep"]["elu"]["died"][i]), 2)
        nb = fmt_ms(pooled_died(n["negative_bias"]["elu"]["died"]), 2)
        return (f"outside the rule, ELU units whose f' came to underflow to 0 in float32 on every example during "
                f"training (not dead: f' > 0 mathematically) at lr {n['lrs'][i]:g}: {hi}, with bias "
                f"{n['bias']:g}: {nb}")

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """ReLU's runs swapped with leaky ReLU's."""
        out = {**n}
        for k in ("lr_sweep", "negative_bias"):
            out[k] = {**n[k], "relu": n[k]["leaky_relu"], "leaky_relu": n[k]["relu"]}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for act in n["activations"]:
            uf = "f' underflow only: " if act == "elu" else ""  # ELU's f' > 0: never dead, see the method
            for i, lr in enumerate(n["lrs"]):
                sw = n["lr_sweep"][act]
                rows.append({"activation": act, "setting": f"lr {lr:g}, bias 0", "dead": uf + fmt_ms(sw["dead"][i], 2),
                             "died in training (per layer)": _per_layer(sw["died"][i]),
                             "off": fmt_ms(sw["off"][i], 2), "train error": fmt_ms(sw["train_error"][i], 2),
                             "diverged runs": f"{_n_diverged(n, act, i)}/{len(sw['died'][i])}"})
            nb = n["negative_bias"][act]
            rows.append({"activation": act, "setting": f"lr {n['bias_lr']:g}, bias {n['bias']:g}",
                         "dead": f"{uf}{fmt_ms(nb['dead'], 2)} (init {fmt_ms(nb['dead_init'], 2)})",
                         "died in training (per layer)": _per_layer(nb["died"]),
                         "off": f"{fmt_ms(nb['off'], 2)} (init {fmt_ms(nb['off_init'], 2)})",
                         "train error": fmt_ms(nb["train_error"], 2),
                         "diverged runs": f"{sum(bool(v) for v in nb.get('diverged', []))}/{len(nb['died'])}"})
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
        acts = n["activations"]
        for act in acts:
            mean, std = _nan_stats(n["lr_sweep"][act]["dead"], 1)
            ax1.errorbar(n["lrs"], mean, np.nan_to_num(std), fmt="o-", capsize=3,
                         color=COLORS.get(act), label=f"{act}: dead")
            ax1.plot(n["lrs"], _nan_stats(n["lr_sweep"][act]["off"], 1)[0], ":", color=COLORS.get(act), lw=1.2)
        ax1.plot([], [], "k:", lw=1.2, label="dotted: off (z <= 0 for all inputs)")
        ax1.set_xscale("log")
        ax1.set_xlabel("SGD learning rate (biases start at 0)")
        ax1.set_ylabel("fraction of hidden units")
        ax1.set_title("dead units vs learning rate")
        ax1.set_ylim(-0.03, 1.03)
        ax1.legend(fontsize=8)
        x = np.arange(len(acts))
        for j, (key, label, alpha) in enumerate((("off_init", "off at init", 0.2), ("off", "off at end", 0.5),
                                                  ("dead", "dead at end", 1.0))):
            stats = [_nan_stats(n["negative_bias"][a][key], None) for a in acts]
            vals = [m for m, _ in stats]
            errs = [np.nan_to_num(sd) for _, sd in stats]
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


def _nan_stats(values: Any, axis: int | None) -> tuple[Any, Any]:
    """Mean and standard deviation over the runs that did not diverge (NaN); NaN, and no point
    drawn, where every run diverged (numpy warns about those empty slices: nothing is wrong)."""
    v = np.array(values, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(v, axis), np.nanstd(v, axis)
