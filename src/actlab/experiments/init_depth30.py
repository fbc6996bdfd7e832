"""Xavier / He initialisation keep gradients flowing through 30 layers; small random init does not.

Each layer multiplies the backward signal by roughly ``sqrt(fan_in) * std(W) * rms(f')``. With
weights ``N(0, 0.01^2)`` and 64 inputs that factor is about 0.08 for ReLU, so after 30 layers the
first layer's gradient is some 30 orders of magnitude too small and training stalls. Glorot &
Bengio (2010) chose ``Var(W) = 2 / (fan_in + fan_out)`` to keep the factor near 1 for tanh; He et
al. (2015) doubled it to ``2 / fan_in`` for ReLU, which halves the variance, and saw a 30-layer
ReLU net with Xavier init stall where theirs trained. We measure each layer's weight-gradient
norm at init and the training loss after a short momentum-SGD run on digits.
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
    fmt_to_target,
    threshold,
    to_target,
)
from actlab.lab.compare import layer_gradients
from actlab.sweep import Config, Record, lab_model, train_group
from actlab._threads import torch_threads
from actlab.theory.meanfield import chi, length_map, variance_profile

# (label, activation, init scheme, init_weights keyword arguments: the engine's Config.init_args)
ARMS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("ReLU, He normal", "relu", "he_normal", {}),
    ("ReLU, Xavier normal", "relu", "xavier_normal", {}),
    ("ReLU, N(0, 0.01^2)", "relu", "normal", {"std": 0.01}),
    ("tanh, Xavier normal", "tanh", "xavier_normal", {}),
]
HE, XAVIER_RELU, SMALL, XAVIER_TANH = (a[0] for a in ARMS)

def predicted_slope(activation: str, scheme: str, init_args: dict[str, Any], width: int) -> float:
    """Mean-field slope of log10 ||dL/dW_l|| per hidden layer, deep in the net, at init.

    ``||dL/dW_l|| ~ ||delta_l|| ||h_{l-1}||``: going one layer towards the input, ``delta``'s second
    moment is multiplied by ``chi(q)`` and ``h``'s by ``E f(u_{l-1})^2 / E f(u_l)^2``. For ReLU both
    factors cancel at any weight scale (the profile is flat; the scale, not the slope, vanishes).
    """
    sigma_w2 = {"he_normal": 2.0, "xavier_normal": 1.0}.get(scheme)  # square layers: fan_in = fan_out = width
    if sigma_w2 is None:
        sigma_w2 = width * float(init_args["std"]) ** 2
    qs = variance_profile(activation, sigma_w2, 0.0, depth=20, q_in=1.0)
    q_prev, q = qs[-2], qs[-1]
    back = 0.5 * math.log10(chi(activation, q, sigma_w2))
    fwd = 0.5 * math.log10(length_map(activation, q_prev, 1.0, 0.0) / length_map(activation, q, 1.0, 0.0))
    return -(back + fwd)  # per layer towards the output: the negative of the step towards the input


SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "data": "digits",                      # scikit-learn 8x8 digits, standardised
        "depth": 30,                           # hidden layers
        "width": 64,                           # units per hidden layer
        "grad_batch": 512,                     # training examples for the gradient norms at init
        "steps": 100,                          # momentum-SGD steps
        "eval_every": 1,                       # steps between evaluations of the whole-training-set loss
        "lr": 0.01,                            # He et al. 2015, Sec. 4.1: lr 1e-2, momentum 0.9, batch 128
        "momentum": 0.9,
        "batch_size": 128,                     # examples per step (at 64, He init diverged on 1 of 5 seeds)
        "seeds": [0, 1, 2],
        "decades": 3.0,                        # decision: first-layer gradient above small init's by this many decades
        "stall": 0.05,                         # ... small init's loss falls by less than this fraction (it stalls)
    },
}
SETTINGS["tiny"] = {**SETTINGS["quick"], "depth": 12, "width": 32, "grad_batch": 128, "steps": 30, "seeds": [0, 1]}
SETTINGS["full"] = {**SETTINGS["quick"], "steps": 1000, "eval_every": 2, "seeds": [0, 1, 2, 3, 4]}

COLORS = {HE: "#009E73", XAVIER_RELU: "#E69F00", SMALL: "#D55E00", XAVIER_TANH: "#0072B2"}


class InitDepth30(Experiment):
    name = "init_depth30"
    order = 120
    # one core, measured 2026-12-04 under load average 2-5 on the 2 shared cores: quick 17 s, full 190 s; a scheduling hint only
    expected_seconds = {"quick": 17, "full": 190}
    title = "At depth 30, ReLU with Xavier init stalls where He init trains"
    claim = ("A 30-layer ReLU net initialised with Xavier (Glorot) weights stalls - its training loss does not fall - "
             "while the same net with He init, Var(W) = 2 / fan_in, trains (He et al. 2015).")
    source = 'He, Zhang, Ren & Sun 2015, Delving Deep into Rectifiers, Figure 3'
    source_found = ('A 30-layer ReLU net with Xavier init completely stalls (its error does not fall), while with their (He) init it converges.')
    proxy_note = ("A 30-layer MLP on 8x8 digits trained 100 steps (full: 1,000), not a 30-layer CNN (27 conv + 3 fc "
                  "layers) on ImageNet, which is too slow for the lab's CPU budget; the optimiser settings are the "
                  "source's.")
    method = ("Digits; MLPs with 30 hidden layers of 64 units: ReLU with He normal, Xavier normal or N(0, 0.01^2) "
              "weights, and tanh with Xavier normal (zero biases). Each layer's weight-gradient norm on 512 training "
              "images at init, then 100 momentum-SGD steps (full: 1,000) with He et al.'s own settings (lr 0.01, momentum "
              "0.9, batch 128, their Sec. 4.1; at batch 64 the same lr diverged on 1 of 5 He-init seeds; a fresh "
              "permutation of the training set each epoch; every net trained at once on actlab's batched engine) and "
              "the training loss on the whole training set every step (full: every 2): the steps until it first "
              "falls 5% below its start (leaves the plateau; a run that never does counts as the whole budget, so "
              "the figure for a stalled arm is a lower bound) and the relative fall from the start to the lowest "
              "value reached; a diverged run is reported, not counted. The rule is He et al.'s Figure 3, stated "
              "as a time: confirmed when Xavier-ReLU needs more steps than He-ReLU to leave the plateau (Welch's t "
              "on log10 steps at the 5% level) and He-ReLU leaves it on every seed (it trains). How many "
              "Xavier-ReLU seeds are still on the plateau at the end is reported beside the rule: on this small "
              "net a 1,000-step run showed Xavier's stall to be a long delay (2 of 5 seeds left the plateau after "
              "some 600 steps), where the source's net did not leave it at all. The small init N(0, 0.01^2) "
              "(first-layer gradient ~1e-35, so it must stall) and Xavier-tanh are sanity checks shown apart. "
              "Beside the rule, the mean-field slope of log10 ||dL/dW_l|| per layer is set against the measured "
              "one: for ReLU it is 0 at every weight scale (delta's shrinking and h's growing cancel), so what "
              "vanishes with a bad scale is the whole profile, not its slope. Verdict changed from the earlier "
              "rule (small init vs He/Xavier-tanh), which could not fail.")

    settings_by_mode = SETTINGS

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        with torch_threads(1):  # small nets: one thread is as fast, and does not spin on a busy machine
            data = load_dataset(s["data"], seed=0)
            x, y = data.x_train[: s["grad_batch"]], data.y_train[: s["grad_batch"]]
            out: dict[str, Any] = {"arms": [a[0] for a in ARMS], "depth": s["depth"], "profile": {}, "first_grad": {},
                                   "loss_drop": {}, "escape": {}, "loss_curves": {}, "diverged": {},
                                   "decades": s["decades"], "stall": s["stall"], "steps": s["steps"]}
            every = s["eval_every"]
            configs = [Config.from_dict({"activation": act, "depth": s["depth"], "width": s["width"], "init": scheme,
                                         "init_args": kw, "bias_init": 0.0, "lr": s["lr"], "optimiser": "momentum",
                                         "momentum": s["momentum"], "data": s["data"], "seed": seed,
                                         "steps": s["steps"], "batch_size": s["batch_size"]})
                       for _, act, scheme, kw in ARMS for seed in s["seeds"]]
            progress(0.0, "training every net on the batched engine")
            # The training loss on the whole training set at init and after every `every` steps.
            results = iter(zip(configs, train_group(configs, Record(every=every, first=every - 1,
                                                                    metrics=("loss", "train_loss"), keep_params=True))))
            jobs, done = len(configs), 0
            steps_at: list[int] = []
            for label, *_ in ARMS:
                prof, first, drop, curves, div, esc = [], [], [], [], [], []
                for seed in s["seeds"]:
                    c, res = next(results)
                    model = lab_model(c, data.in_features, data.out_features, res.params_init)
                    g = layer_gradients(model, x, y).weight_grad_norms
                    prof.append(g)
                    first.append(g[0])
                    curve = res.curve("train_loss")
                    steps_at = max(steps_at, [n for n, _ in curve], key=len)
                    curves.append([v for _, v in curve])
                    diverged = res.status == "diverged"
                    # The lowest training loss reached (every steps/10 on the whole training set): "trains"
                    # must not hang on where an oscillating curve sits at the last evaluation, and any
                    # escape from the plateau counts against "stalls".
                    l0, l1 = curve[0][1], min(v for _, v in curve)
                    drop.append((l0 - l1) / l0 if not diverged else math.nan)
                    # steps until the loss first falls `stall` below its start (None: never, in the budget)
                    left = next((n for n, v in curve if v <= l0 * (1 - s["stall"])), None)
                    esc.append("diverged" if diverged else left)
                    div.append(diverged)
                    done += 1
                    progress(done / jobs, f"{label} seed {seed}")
                out["profile"][label], out["first_grad"][label] = prof, first
                out["loss_drop"][label], out["loss_curves"][label], out["diverged"][label] = drop, curves, div
                out["escape"][label] = esc
            for label in out["arms"]:  # a diverged run's curve stops early: pad it to the common steps
                out["loss_curves"][label] = [c + [math.nan] * (len(steps_at) - len(c))
                                             for c in out["loss_curves"][label]]
            out["curve_steps"] = steps_at
            out["theory_slope"] = {label: predicted_slope(act, scheme, kw, s["width"])
                                   for label, act, scheme, kw in ARMS}
            return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        # The rule is He et al.'s Figure 3: at depth 30, ReLU with Xavier init stalls where He init trains.
        cap = float(n["steps"])
        pct = f"{n['stall']:.0%}"
        checks = [
            compare(f"steps until the loss first falls {pct} (leaves the plateau): {XAVIER_RELU} > {HE}",
                    [to_target(v, cap) for v in n["escape"][XAVIER_RELU]],
                    [to_target(v, cap) for v in n["escape"][HE]], expect="greater", log=True),
            threshold(f"{HE}: relative loss fall (trains: above {n['stall']:g} on every seed)", n["loss_drop"][HE],
                      above=n["stall"]),
        ]
        # A weight scale of 0.01 leaves a 30-layer ReLU net with gradients of 1e-30 and less: that it
        # stalls follows from the arithmetic, so it is a sanity check, not evidence for the claim.
        sanity = [compare(f"{HE}: first-layer gradient > {SMALL}'s x 10^{n['decades']:g}", n["first_grad"][HE],
                          n["first_grad"][SMALL], expect="greater", factor=10.0 ** n["decades"], log=True),
                  threshold(f"{SMALL}: relative loss fall (stalls)", n["loss_drop"][SMALL], below=n["stall"]),
                  compare(f"{XAVIER_TANH}: relative loss fall > {SMALL}'s", n["loss_drop"][XAVIER_TANH],
                          n["loss_drop"][SMALL], expect="greater")]
        esc = n["escape"][XAVIER_RELU]
        stuck = sum(v is None for v in esc)
        finite = sum(v != "diverged" for v in esc)
        note = (f"{XAVIER_RELU} still on the plateau (loss not {pct} below its start) after {int(cap)} steps: "
                f"{stuck} of {finite} seeds; " + self._theory_note(n))
        return Verdict.from_checks(checks, sanity=sanity, note=note)

    def _theory_note(self, n: dict[str, Any]) -> str:
        """Mean field beside measurement: the per-layer slope of log10 ||dL/dW_l|| at init."""
        parts = []
        for a in n["arms"]:
            logs = np.log10(np.clip(np.asarray(n["profile"][a], dtype=float), 1e-300, None))[:, :-1].mean(0)
            meas = float(np.polyfit(np.arange(logs.size), logs, 1)[0])
            parts.append(f"{a} {meas:.3g} (theory {n['theory_slope'][a]:.3g})" if "theory_slope" in n
                         else f"{a} {meas:.3g}")
        return ("outside the rule, slope of log10 weight-gradient norm (no bias) per hidden layer at init, measured "
                "vs mean field: " + ", ".join(parts))

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        # He init and Xavier init trade places: He's stalls, Xavier's trains.
        out = {**n}
        for key in ("first_grad", "loss_drop", "escape", "profile", "loss_curves"):
            out[key] = {**n[key], XAVIER_RELU: n[key][HE], HE: n[key][XAVIER_RELU]}
        return out

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"activation, init": a,
                 "first-layer grad norm at init": fmt_ms(n["first_grad"][a]),
                 "last-layer grad norm at init": fmt_ms([p[-1] for p in n["profile"][a]]),
                 "training loss: start": fmt_ms([c[0] for c in n["loss_curves"][a]]),
                 "training loss: end": fmt_ms([c[-1] for c in n["loss_curves"][a]]),
                 "relative fall to the lowest loss": fmt_ms(n["loss_drop"][a]),
                 f"steps to a {n['stall']:.0%} fall (never = {n['steps']})":
                     fmt_to_target(n["escape"][a], float(n["steps"])),
                 "diverged runs": sum(n["diverged"][a])} for a in n["arms"]]

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        for a in n["arms"]:
            logs = np.log10(np.clip(np.asarray(n["profile"][a], dtype=float), 1e-45, None))
            m, sd = logs.mean(0), logs.std(0)
            layers = np.arange(1, logs.shape[1] + 1)
            ax1.plot(layers, 10 ** m, marker="o", ms=2.5, color=COLORS[a], label=a)
            ax1.fill_between(layers, 10 ** (m - sd), 10 ** (m + sd), color=COLORS[a], alpha=0.2)
            c = np.asarray(n["loss_curves"][a], dtype=float)
            ax2.plot(n["curve_steps"], np.nanmean(c, 0), marker="o", ms=3, color=COLORS[a], label=a)
            ax2.fill_between(n["curve_steps"], np.nanmin(c, 0), np.nanmax(c, 0), color=COLORS[a], alpha=0.15)
        ax1.set_yscale("log")
        ax1.set_xlabel(f"layer (1 = input side, {n['depth'] + 1} = output)")
        ax1.set_ylabel("||dL/dW_l|| at init (mean of log10 ± std)")
        ax1.set_title(f"gradient per layer, {n['depth']} hidden layers")
        ax1.grid(alpha=0.3)
        ax1.legend(fontsize=8)
        ax2.set_xlabel("momentum-SGD step")
        ax2.set_ylabel("training loss (mean, band = min..max over seeds)")
        ax2.set_title("training loss")
        ax2.grid(alpha=0.3)


EXPERIMENT = InitDepth30()
