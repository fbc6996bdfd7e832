"""In a deep sigmoid net the top hidden layer saturates at 0 early in training.

Glorot & Bengio (2010, Figure 2) trained a 4 x 1000 sigmoid MLP with the then-standard init
``W ~ U[-1/sqrt(n), 1/sqrt(n)]`` and watched each hidden layer's activations during training: the
top hidden layer's values quickly fall to 0 (saturation of the sigmoid's lower end) while the
lower layers stay near 0.5, and the top layer only slowly recovers. Their explanation: the
softmax read-out first learns from its biases, and the cheapest way to do that is to silence
the top layer's input ``h`` (whose mean 0.5 would otherwise bias every logit). tanh and softsign,
symmetric around 0, are shown beside.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from actlab.experiments.base import Experiment, Mode, Progress, Verdict, compare, fmt_ms, threshold
from actlab.lab.data import load_dataset
from actlab.lab.init import init_weights
from actlab._threads import torch_threads
from actlab.lab.models import MLP
from actlab.lab.train import Callback, TrainConfig, train

SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "data": "mnist",                       # 60,000 MNIST training images, pixels in [0, 1] (no standardising)
        "n_train": None,                       # all of them
        "activations": ["sigmoid", "tanh", "softsign"],
        "depth": 4,                            # hidden layers (Glorot & Bengio: 4 x 1000)
        "width": 1000,
        "init": "torch_default",               # their standard init, U[-1/sqrt(fan_in), 1/sqrt(fan_in)]; biases 0
        "lr": 0.1,                             # plain SGD
        "batch_size": 10,                      # as in the paper
        "steps": 2000,                         # SGD steps (20,000 examples, a third of an epoch)
        "every": 50,                           # steps between measurements of the activations
        "n_watch": 500,                        # fixed training images the activations are measured on
        "seeds": [0, 1, 2, 3, 4],
        "low": 0.1,                            # decision: sigmoid's top-layer mean falls below this ...
        "early": 0.5,                          # ... within this fraction of the run, on every seed
    },
}
SETTINGS["quick"] = {**SETTINGS["full"], "n_train": 5000, "width": 200, "steps": 300, "every": 25, "seeds": [0, 1, 2],
                     "activations": ["sigmoid", "tanh"]}
SETTINGS["tiny"] = {**SETTINGS["quick"], "data": "digits", "width": 64, "steps": 120, "every": 20, "n_watch": 200,
                    "activations": ["sigmoid", "tanh"], "seeds": [0, 1]}

COLORS = {"sigmoid": "#D55E00", "tanh": "#0072B2", "softsign": "#009E73"}


class LayerStats(Callback):
    """Each hidden layer's activation mean and standard deviation on fixed inputs, every ``every`` steps."""

    def __init__(self, x: torch.Tensor, every: int) -> None:
        self.x, self.every = x, every
        self.steps: list[int] = []
        self.mean: list[list[float]] = []  # measurement -> layer
        self.std: list[list[float]] = []

    def measure(self, step: int, model: MLP) -> None:
        with torch.no_grad():
            _, _, post = model.forward_all(self.x)
        self.steps.append(step)
        self.mean.append([float(h.mean()) for h in post])
        self.std.append([float(h.std()) for h in post])

    def on_step_end(self, step: int, model: torch.nn.Module, loss: torch.Tensor) -> None:
        if (step + 1) % self.every == 0:
            self.measure(step + 1, model)  # type: ignore[arg-type]


class TopLayerSaturation(Experiment):
    name = "top_layer_saturation"
    order = 25
    title = "The top hidden layer of a sigmoid net saturates at 0 early in training"
    claim = ("With the standard init U[-1/sqrt(n), 1/sqrt(n)], the top hidden layer of a 4-layer sigmoid MLP is "
             "driven to 0 (saturated) early in training while the lower layers stay near 0.5 (Glorot & Bengio 2010).")
    source = ("Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural networks, "
              "Figure 2")
    source_found = ("Training a 4 x 1000 sigmoid MLP (standard init, SGD, batch 10), the top hidden layer's mean "
                    "activation drops to ~0 within the first epochs while layers 1-3 stay around 0.5; it recovers only "
                    "slowly, much later in training.")
    method = ("MNIST (pixels in [0, 1]); an MLP with 4 hidden layers, biases 0 and weights U[-1/sqrt(fan_in), "
              "1/sqrt(fan_in)] (the paper's standard init), plain SGD with batch 10 and lr 0.1, with sigmoid, tanh "
              "or softsign units. Every 50 steps, each hidden layer's activation mean and standard deviation on 500 "
              "fixed training images. Rule (sigmoid): confirmed when the top hidden layer's mean falls below 0.1 "
              "within the first half of the run on every seed, and at the end of the run it lies below the first "
              "hidden layer's mean (Welch's t at the 5% level). tanh and softsign are shown beside (their centre is "
              "0, so 'saturated at 0' does not apply); the slow recovery happens over many epochs and is not "
              "tested here.")
    needs = ("mnist",)

    settings_by_mode = SETTINGS
    expected_seconds = {"full": 372}  # one core, measured 2026-12-04 (scheduling hint only)

    def proxy(self, mode: Mode) -> str:
        if mode == "full":
            return ("A third of an epoch, not the paper's many epochs: the early saturation is tested, the slow "
                    "recovery is not.")
        if mode == "quick":
            return ("4 x 200 instead of 4 x 1000, 5,000 MNIST images, 300 steps, no softsign arm: a scaled-down "
                    "repeat of the paper's setup.")
        return "Digits and 4 x 64: a smoke test, not a reproduction."

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        with torch_threads(1):
            data = load_dataset(s["data"], n=s["n_train"], n_test=1000, preprocess="none", seed=0)
            x_watch = data.x_train[: s["n_watch"]]
            out: dict[str, Any] = {"activations": s["activations"], "depth": s["depth"], "low": s["low"],
                                   "early": s["early"], "steps": s["steps"], "mean": {}, "std": {}}
            jobs, done = len(s["activations"]) * len(s["seeds"]), 0
            for act in s["activations"]:
                means, stds = [], []
                for seed in s["seeds"]:
                    model = MLP(data.in_features, data.out_features, depth=s["depth"], width=s["width"],
                                activation=act)
                    init_weights(model, s["init"], bias="zeros", seed=seed)
                    stats = LayerStats(x_watch, s["every"])
                    stats.measure(0, model)
                    # The rule reads the activations only: the trainer's own loss / error evaluations (at
                    # the start and the end) run on 1,000 training images, not all 60,000 (which cost as
                    # much as the training itself at 4 x 1000).
                    cfg = TrainConfig(loss="ce", optimiser="sgd", lr=s["lr"], batch_size=s["batch_size"],
                                      steps=s["steps"], seed=seed, eval_every=s["steps"], eval_train_max=1000,
                                      threads=1)
                    train(model, data, cfg, callbacks=[stats])
                    means.append(stats.mean)
                    stds.append(stats.std)
                    out["watch_steps"] = stats.steps
                    done += 1
                    progress(done / jobs, f"{act} seed {seed}")
                out["mean"][act], out["std"][act] = means, stds
            return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        top = n["depth"] - 1
        steps = n["watch_steps"]
        early = [i for i, t in enumerate(steps) if t <= n["early"] * n["steps"]]
        runs = n["mean"]["sigmoid"]  # seed -> measurement -> layer
        lowest_early = [min(run[i][top] for i in early) for run in runs]
        checks = [
            threshold(f"sigmoid: lowest top-layer mean in the first {n['early']:.0%} of the run (saturates at 0)",
                      lowest_early, below=n["low"]),
            compare("sigmoid, end of run: top hidden layer's mean < first hidden layer's",
                    [run[-1][top] for run in runs], [run[-1][0] for run in runs], expect="less"),
        ]
        # At init every sigmoid layer's mean is ~0.5 (E sigma(z) = 1/2 for symmetric z): arithmetic, shown apart.
        sanity = [threshold("sigmoid at init: |top-layer mean - 0.5|", [abs(run[0][top] - 0.5) for run in runs],
                            below=0.05)]
        return Verdict.from_checks(checks, sanity=sanity)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """The layers' order reversed in every sigmoid measurement: the first layer saturates, the top does not."""
        flip = [[list(reversed(m)) for m in run] for run in n["mean"]["sigmoid"]]
        return {**n, "mean": {**n["mean"], "sigmoid": flip}}

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for act in n["activations"]:
            for layer in range(n["depth"]):
                m, sd = n["mean"][act], n["std"][act]
                rows.append({"activation": act, "hidden layer": layer + 1,
                             "mean at init": fmt_ms([r[0][layer] for r in m]),
                             "lowest mean": fmt_ms([min(x[layer] for x in r) for r in m]),
                             "mean at end": fmt_ms([r[-1][layer] for r in m]),
                             "std at end": fmt_ms([r[-1][layer] for r in sd])})
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        acts = n["activations"]
        axes = fig.subplots(1, len(acts), sharex=True, squeeze=False)[0]
        steps = np.asarray(n["watch_steps"])
        cmap = __import__("matplotlib").colormaps["viridis"]
        for ax, act in zip(axes, acts):
            m = np.asarray(n["mean"][act], dtype=float)  # seed x time x layer
            sd = np.asarray(n["std"][act], dtype=float)
            for layer in range(n["depth"]):
                c = cmap(layer / max(n["depth"] - 1, 1))
                mu, spread = m[:, :, layer].mean(0), sd[:, :, layer].mean(0)
                ax.plot(steps, mu, color=c, label=f"layer {layer + 1}")
                ax.fill_between(steps, mu - spread, mu + spread, color=c, alpha=0.12)
            ax.set_title(f"{act}: activation mean (band: ± std over units and images)", fontsize=9)
            ax.set_xlabel("SGD step")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("hidden-layer activation")
        axes[0].legend(fontsize=8)
        if "sigmoid" in acts:
            axes[acts.index("sigmoid")].axhline(n["low"], color="grey", ls=":", lw=1)


EXPERIMENT = TopLayerSaturation()
