"""Dead ReLUs stay dead; units silenced by dropout come back at the next step.

A ReLU unit whose pre-activation is negative for every input outputs 0 and has derivative 0
everywhere, so its incoming weights get no gradient and nothing pushes it back: it is dead
(a large learning-rate step can knock units there). Dropout also zeroes units, but each step
draws a fresh random mask: a unit silenced now is kept with probability ``1 - p`` next step. For
two independent masks that drop with probability ``p`` the Jaccard overlap of the silenced sets is
``p^2 / (2p - p^2) = p / (2 - p)`` (1/3 at ``p = 0.5``). We compare the persistence of the dead set
across epochs (a ReLU MLP trained with a high learning rate) with that of dropout's silenced
sets across steps (the same MLP with dropout).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn

from actlab.lab.data import load_dataset
from actlab.experiments.base import (
    Experiment,
    Progress,
    Verdict,
    compare,
    fmt_ms,
    proportion,
    threshold,
)
from actlab.lab.init import init_weights
from actlab.probe.quantities import module_derivative
from actlab.probe.quantities.inactive import inactive_units
from actlab._threads import torch_threads
from actlab.lab.models import MLP
from actlab.lab.train import Callback, TrainConfig, train

SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",                      # scikit-learn 8x8 digits, standardised
        "depth": 2,                            # hidden layers (ReLU)
        "width": 128,                          # units per hidden layer
        "init": "he_normal",
        "epochs": 10,                          # passes over the 1437 training images
        "batch_size": 64,                      # examples per SGD step
        "dying_lr": 1.0,                       # plain SGD learning rate that kills some units
        "dropout": 0.5,                        # dropout probability p of the second net
        "dropout_lr": 0.1,                     # its (ordinary) SGD learning rate
        "seeds": [0, 1, 2],
        "min_dead": 0.02,                      # decision: at least this share of units dead (else nothing to test)
        "persistent": 0.9,                     # ... dead-set Jaccard between epochs above this
        # ... per layer 2+, the share of its ever-dead units alive again later below this (pooled exact CI): a dead
        # unit stays dead more often than not, where dropout brings every silenced unit back (share 1). The
        # source's literal "never" is reported beside it (exact counts: one revival breaks it)
        "revive_max": 0.5,
        "expected_tol": 0.05,                  # ... dropout Jaccard within this of p / (2 - p)
        "comeback": 0.99,                      # ... at least this share of silenced units kept again later
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "epochs": 4, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "epochs": 40, "seeds": list(range(20))}  # ~15 dead units a seed


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|A & B| / |A | B| of two boolean masks (NaN when both are empty)."""
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else math.nan


class DeadSets(Callback):
    """The set of dead hidden units (derivative 0 on every training input) at the end of each epoch."""

    def __init__(self, x: torch.Tensor, steps_per_epoch: int) -> None:
        self.x, self.every = x, steps_per_epoch
        self.sets: list[torch.Tensor] = []  # epoch -> bool (units of all hidden layers)

    def on_step_end(self, step: int, model: nn.Module, loss: torch.Tensor) -> None:
        if (step + 1) % self.every == 0:
            with torch.no_grad():
                _, pre, _ = model.forward_all(self.x)
            # inactive on the whole training set at once: the units dead on the data
            self.sets.append(torch.cat([inactive_units(module_derivative(a, z).abs())
                                        for a, z in zip(model.activations(), pre)]))


class DropoutMasks:
    """Forward hooks on a model's ``nn.Dropout`` layers: which (example, unit) entries each training
    step silenced (input nonzero, output zero), compared with the previous step's."""

    def __init__(self, model: MLP) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
        self.prev: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.jaccards: list[float] = []
        self.silenced_ever = [torch.zeros(0, dtype=torch.bool)] * len(self.layers)
        self.kept_after = [torch.zeros(0, dtype=torch.bool)] * len(self.layers)
        self.handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if not module.training:
            return
        i = self.layers.index(module)
        inp = args[0].detach()
        live = inp != 0
        silenced, kept = live & (out.detach() == 0), live & (out.detach() != 0)
        if i in self.prev and self.prev[i][0].shape == silenced.shape:
            p_sil, p_live = self.prev[i]
            both = live & p_live  # entries dropout could act on at both steps
            j = jaccard(silenced & both, p_sil & both)
            if not math.isnan(j):
                self.jaccards.append(j)
        self.prev[i] = (silenced, live)
        units = silenced.shape[1]
        if self.silenced_ever[i].numel() == 0:
            self.silenced_ever[i] = torch.zeros(units, dtype=torch.bool)
            self.kept_after[i] = torch.zeros(units, dtype=torch.bool)
        # A unit "comes back" when it is kept on a step after the one it was first silenced on.
        self.kept_after[i] |= self.silenced_ever[i] & kept.any(0)
        self.silenced_ever[i] |= silenced.any(0)

    def comeback_share(self) -> float:
        ever = torch.cat(self.silenced_ever)
        return float(torch.cat(self.kept_after)[ever].float().mean()) if bool(ever.any()) else math.nan

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class DeadVsDropout(Experiment):
    name = "dead_vs_dropout"
    order = 160
    title = "Dead ReLUs stay dead; units silenced by dropout come back"
    claim = ("A dead ReLU unit (zero on every input) gets no gradient and stays dead epoch after epoch, while "
             "dropout silences a fresh random set each step, so every unit it silences is back soon after.")
    source = 'CS231n notes on ReLU; Srivastava et al. 2014, Dropout'
    source_found = ('A dead ReLU never activates again, since no gradient reaches it; dropout silences a random subset each step, and a silenced unit is back in the next step.')
    method = ("Digits; an MLP with 2 ReLU hidden layers of 128 units, He normal init. (a) Plain SGD at a high "
              "learning rate (1.0): after every epoch, the set of dead units as the source defines them (derivative "
              "0 on all 1437 training images: inactive on the whole training set), its Jaccard overlap between "
              "consecutive epochs, and, per layer, the units dead at some epoch end (ever-dead) that are alive at a "
              "later epoch end (revived). (b) The same net with dropout p = 0.5 at lr 0.1: the Jaccard overlap of "
              "the silenced (example, unit) entries between consecutive steps (independent masks give p / (2 - p)) "
              "and the share of silenced units kept again later. Layer 1 sees fixed data, so under plain SGD a unit "
              "dead on all of it gets no gradient and cannot revive (an identity: a sanity check); a deeper unit is "
              "dead only relative to its inputs, which move as the layers below train, so whether it stays dead is "
              "the testable part of the claim. Rule, per layer 2+ with counts pooled over seeds (each ever-dead "
              "unit one trial): the revived share's exact binomial 95% CI lies below 1/2 - a dead unit stays dead "
              "for the rest of training more often than not, where dropout's silenced units all come back (share 1) "
              "- and the dead-set Jaccard is above the dropout one (Welch's t at the 5% level); inconclusive when "
              "the share of dead units at the end, pooled over seeds, is not above 2% (exact CI). The source's "
              "literal 'never activates again' is an exact count (one revival breaks it) and is reported per layer "
              "beside the rule: it holds in layer 1 by construction and, in layer 2, the revived share says how "
              "often input drift brings a dead unit back. The dropout overlap p / (2 - p) and the comeback share "
              "are properties of independent masks: sanity checks that never decide.")
    expected_seconds = {"quick": 9.0, "full": 112.0}

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        with torch_threads(1):  # small nets: one thread is as fast, and does not spin on a busy machine
            data = load_dataset(s["data"], seed=0)
            per_epoch = data.n_train // s["batch_size"]
            steps = per_epoch * s["epochs"]
            p = s["dropout"]
            out: dict[str, Any] = {"p": p, "expected": p / (2 - p), "epochs": s["epochs"], "dead_counts": [],
                                   "dead_fraction": [], "dead_jaccard": [], "dead_jaccard_curves": [], "revived": [],
                                   "dropout_jaccard": [], "dropout_jaccard_trace": [], "comeback": [],
                                   "revived_per_layer": [], "ever_dead_per_layer": [], "dead_per_layer": [],
                                   "width": s["width"], "depth": s["depth"],
                                   **{k: s[k] for k in ("min_dead", "persistent", "revive_max", "expected_tol")},
                                   "comeback_min": s["comeback"]}
            for i, seed in enumerate(s["seeds"]):
                model = MLP(data.in_features, data.out_features, depth=s["depth"], width=s["width"], activation="relu")
                init_weights(model, s["init"], seed=seed)
                dead = DeadSets(data.x_train, per_epoch)
                cfg = TrainConfig(loss="ce", optimiser="sgd", lr=s["dying_lr"], batch_size=s["batch_size"], steps=steps,
                                  seed=seed, eval_every=steps, threads=1)
                train(model, data, cfg, callbacks=[dead])
                sets = dead.sets
                js = [jaccard(a, b) for a, b in pairwise(sets)]
                ever = torch.stack(sets).any(0)
                # revived: dead at some epoch end, alive at a later one
                revived = torch.zeros_like(ever)
                for e in range(len(sets) - 1):
                    revived |= sets[e] & ~torch.stack(sets[e + 1:]).all(0)
                out["dead_counts"].append([int(d.sum()) for d in sets])
                out["dead_fraction"].append(float(sets[-1].float().mean()))
                out["dead_jaccard_curves"].append(js)
                out["dead_jaccard"].append(float(np.nanmean(js)) if any(not math.isnan(j) for j in js) else math.nan)
                out["revived"].append(float(revived[ever].float().mean()) if bool(ever.any()) else math.nan)
                # per layer (units are concatenated layer by layer): counts, to pool over seeds
                w = s["width"]
                out["revived_per_layer"].append([int(revived[k * w:(k + 1) * w].sum()) for k in range(s["depth"])])
                out["ever_dead_per_layer"].append([int(ever[k * w:(k + 1) * w].sum()) for k in range(s["depth"])])
                out["dead_per_layer"].append([int(sets[-1][k * w:(k + 1) * w].sum()) for k in range(s["depth"])])
                progress((2 * i + 1) / (2 * len(s["seeds"])), f"dying ReLU seed {seed}")

                model = MLP(data.in_features, data.out_features, depth=s["depth"], width=s["width"], activation="relu",
                            dropout=p)
                init_weights(model, s["init"], seed=seed)
                masks = DropoutMasks(model)
                cfg = TrainConfig(loss="ce", optimiser="sgd", lr=s["dropout_lr"], batch_size=s["batch_size"],
                                  steps=steps, seed=seed, eval_every=steps, threads=1)
                train(model, data, cfg)
                masks.remove()
                out["dropout_jaccard"].append(float(np.mean(masks.jaccards)))
                out["dropout_jaccard_trace"].append(masks.jaccards[:: max(len(masks.jaccards) // 100, 1)])
                out["comeback"].append(masks.comeback_share())
                progress((2 * i + 2) / (2 * len(s["seeds"])), f"dropout seed {seed}")
            out["units"] = s["depth"] * s["width"]
            return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        # a precondition, not the claim: enough units died (pooled over seeds) to count revivals
        enough = proportion("dying arm: share of units dead at the end (pooled over seeds)",
                            sum(sum(d) for d in n["dead_per_layer"]), n["units"] * len(n["dead_per_layer"]),
                            above=n["min_dead"])
        if enough.state != "pass":  # without dead units there is nothing to test
            return Verdict("inconclusive", enough.text(), (enough,))
        # Layer 1 sees the fixed data: under plain SGD a unit dead on all of it gets no gradient to its weights
        # or bias and cannot revive - an identity, so a sanity check. Deeper layers' inputs change as the
        # layers below train, so whether their dead units stay dead is the testable part of the claim.
        # Counts are pooled over seeds, one check per deeper layer.
        revived = [sum(col) for col in zip(*n["revived_per_layer"])]
        ever = [sum(col) for col in zip(*n["ever_dead_per_layer"])]
        checks = [proportion(f"layer {k + 1}: share of ever-dead units alive again at a later epoch (pooled over "
                             "seeds)", revived[k], ever[k], below=n["revive_max"]) for k in range(1, len(ever))]
        checks.append(compare("dead-set Jaccard between epochs > dropout's between steps", n["dead_jaccard"],
                              n["dropout_jaccard"], expect="greater"))
        per_layer = "; ".join(f"layer {k + 1}: " + ("no unit died" if ever[k] == 0 else
                                                   f"{revived[k]}/{ever[k]} ever-dead units revived ("
                                                   + ("the literal 'never again' holds" if revived[k] == 0 else
                                                      "the literal 'never again' does not hold there") + ")")
                              for k in range(len(ever)))
        # Independent masks overlap by p / (2 - p) and bring every unit back: properties of the
        # dropout draw itself, so sanity checks.
        sanity = [
            enough,
            threshold("layer 1 (fixed inputs): dead units that revive later, per seed (0 under plain SGD)",
                      [r[0] for r in n["revived_per_layer"]], below=0.5),
            threshold(f"dropout: |Jaccard between steps - p/(2-p) = {n['expected']:.3f}|",
                      [abs(j - n["expected"]) for j in n["dropout_jaccard"]], below=n["expected_tol"]),
            threshold("dropout: silenced units kept again later (share)", n["comeback"], above=n["comeback_min"]),
        ]
        return Verdict.from_checks(checks, sanity=sanity, note=f"outside the rule, per layer: {per_layer}")

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        # As if dead units churned like dropout masks and every one of them revived.
        return {**n, "dead_jaccard": list(n["dropout_jaccard"]), "revived": [1.0 for _ in n["revived"]],
                "dropout_jaccard": list(n["dead_jaccard"]), "revived_per_layer": [list(e) for e in
                                                                                  n["ever_dead_per_layer"]]}

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"arm": "high-lr ReLU: dead units", "share of units": fmt_ms(n["dead_fraction"]),
             "Jaccard (consecutive)": fmt_ms(n["dead_jaccard"]), "come back": fmt_ms(n["revived"]),
             "expected Jaccard": "1 if permanent"},
            {"arm": f"dropout p = {n['p']:g}: silenced entries", "share of units": f"{n['p']:g} per step",
             "Jaccard (consecutive)": fmt_ms(n["dropout_jaccard"]), "come back": fmt_ms(n["comeback"]),
             "expected Jaccard": f"p/(2-p) = {n['expected']:.3f}"},
        ]

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        for k, counts in enumerate(n["dead_counts"]):
            ax1.plot(np.arange(1, len(counts) + 1), counts, marker="o", ms=3, label=f"seed {k}")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel(f"dead units (of {n['units']})")
        ax1.set_title(f"dead set after each epoch (Jaccard {np.nanmean(n['dead_jaccard']):.2f}, "
                      f"revived {np.nanmean(n['revived']):.2f})", fontsize=10)
        ax1.set_ylim(bottom=0)
        ax1.grid(alpha=0.3)
        ax1.legend(fontsize=8)
        dj = [j for c in n["dead_jaccard_curves"] for j in c if not math.isnan(j)]
        trace = [j for t in n["dropout_jaccard_trace"] for j in t]
        bins = np.linspace(0, 1, 41)
        ax2.hist(trace, bins=bins, color="#0072B2", alpha=0.7, density=True, label="dropout masks, step to step")
        ax2.hist(dj, bins=bins, color="#D55E00", alpha=0.7, density=True, label="dead ReLU sets, epoch to epoch")
        ax2.axvline(n["expected"], color="#0072B2", ls="--", lw=1, label=f"p/(2-p) = {n['expected']:.3f}")
        ax2.set_xlabel("Jaccard overlap of consecutive silenced sets")
        ax2.set_ylabel("density")
        ax2.set_title("how much of the silenced set persists")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)


EXPERIMENT = DeadVsDropout()
