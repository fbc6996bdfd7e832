"""Krizhevsky et al.'s Figure 1, on a CNN: epochs to a training-error target, ReLU vs tanh.

Krizhevsky, Sutskever & Hinton (2012, Figure 1) trained a four-layer convolutional network on
CIFAR-10 with ReLU and with tanh units, each at its own best learning rate, and found that the
ReLU net reached 25% training error six times faster (in epochs). We repeat the protocol on the
real data sets that ship with actlab's data directory: cuda-convnet's layers-18pct net (the four-layer
CIFAR-10 net: three 5x5 conv layers of 32, 32 and 64 channels, each followed by 3x3 / stride-2 pooling
- max, average, average - and a linear read-out) at a quarter of its widths, with its per-layer
N(0, initW^2) init on its input scale (mean-subtracted pixels in 0-255 units), SGD with momentum 0.9
and batch 128, the learning rate tuned per activation over its own grid (the best one must lie inside
it), then fresh seeds at it, and the training error on the whole training set checked every 0.1 epoch
until it reaches the source's 25%. CIFAR-10 is not available here: Fashion-MNIST stands in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from actlab.experiments.base import (
    Experiment,
    Mode,
    Progress,
    Verdict,
    best_setting,
    compare,
    fmt_to_target,
    inside_grid,
    ratio_text,
    to_target,
)
from actlab.lab.data import load_dataset
from actlab.lab.init import init_weights
from actlab._threads import torch_threads
from actlab.lab.models import make_activation
from actlab.lab.train import TrainConfig, train

SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "data": "fashion_mnist",           # 28x28 grey images, 10 classes (stands in for CIFAR-10)
        "n_train": 2560,                   # training images: a fixed subset (20 steps an epoch) (CPU budget)
        "n_test": 64,                      # test images: unused by the rule (training error); the trainer evaluates
                                           # them at every check, so they are kept few
        "preprocess": "centre",            # per-pixel training mean subtracted, as cuda-convnet's data provider did
        "input_scale": 255.0,              # ... on pixels in 0-255 units (cuda-convnet's), which its initW assumes
        "activations": ["relu", "tanh"],
        "channels": [8, 8, 16],            # layers-18pct's shape (32-32-64) at a quarter of its widths (CPU budget)
        "pools": ["max", "avg", "avg"],    # layers-18pct: pool1 max, pool2 and pool3 average (3x3, stride 2)
        "init_std": [1e-4, 0.01, 0.01, 0.01],  # layers-18pct's initW of conv1, conv2, conv3, fc10 (N(0, initW^2)),
                                           # biases 0 (initB's default); the same for both activations
        "lrs": {"relu": [0.003, 0.01, 0.03],   # SGD-momentum learning rates per activation (tuned independently, as
                "tanh": [0.03, 0.1, 0.3]},     # in the source); calibrated on one seed: relu best 0.01 (0.03 stalls
                                           # near 37%), tanh best 0.1 (0.3 stalls near 27%)
        "momentum": 0.9,
        "batch_size": 128,                 # as in the paper
        "target": 0.25,                    # the source's target: 25% training error, checked on the whole subset
        "check_every": 0.1,                # epochs between checks: every 2 of an epoch's 20 steps
        "max_epochs": 10.0,                # a run not at the target by then counts as max_epochs (at the best lr
                                           # the calibration seed needed about 6 epochs with either activation)
        "tune_seeds": [100],               # seeds that pick each activation's learning rate over its grid
        "seeds": [0, 1, 2, 3, 4],          # fresh seeds, each activation at its picked learning rate: the test
        "source_ratio": 6.0,               # Krizhevsky et al.'s tanh / ReLU epochs ratio
    },
}
# quick and tiny: 8x8 digits (ships with scikit-learn) with PyTorch's default init and max pooling - a proxy of the
# proxy. Quick: the same per-activation grids hold each optimum inside (tuning seed: relu 0.003 never, 0.01 4.75,
# 0.03 5.75 epochs; tanh 5.75, 2.75, never); a 10% target was reached by no tanh run in 6 epochs, 30% is.
SETTINGS["quick"] = {**SETTINGS["full"], "data": "digits", "n_train": None, "n_test": None, "preprocess": "none",
                     "input_scale": 1.0, "pools": ["max", "max", "max"], "init_std": None, "target": 0.3,
                     "max_epochs": 6.0, "check_every": 0.25, "seeds": [0, 1, 2]}
SETTINGS["tiny"] = {**SETTINGS["quick"], "max_epochs": 2.0, "target": 0.5, "seeds": [0, 1]}

COLORS = {"relu": "#009E73", "tanh": "#0072B2"}


class ConvNet(nn.Module):
    """cuda-convnet-style: [conv 5x5 (padding 2) -> f -> 3x3 / stride-2 pooling] x 3, then a linear read-out.

    ``pools`` names each block's pooling (``"max"`` or ``"avg"``; layers-18pct: max, avg, avg);
    ``input_scale`` multiplies the input first (255: cuda-convnet's pixel units, 0-255 less the mean).
    """

    def __init__(self, in_channels: int, image_size: int, n_classes: int, activation: str,
                 channels: list[int], pools: tuple[str, ...] = ("max", "max", "max"), input_scale: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = in_channels, image_size
        for c, pool in zip(channels, pools, strict=True):
            layers += [nn.Conv2d(c_in, c, 5, padding=2), make_activation(activation),
                       nn.MaxPool2d(3, stride=2, padding=1) if pool == "max"
                       else nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)]
            c_in, side = c, (side + 1) // 2
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, n_classes)]
        self.net = nn.Sequential(*layers)
        self.in_channels, self.image_size, self.input_scale = in_channels, image_size, float(input_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.shape[0], self.in_channels, self.image_size, self.image_size)
        return self.net(x * self.input_scale if self.input_scale != 1.0 else x)


def init_per_layer(model: nn.Module, stds: list[float], seed: int) -> None:
    """cuda-convnet's init: each weight layer's weights from N(0, initW^2) (its own initW, in order), biases 0."""
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if len(weighted) != len(stds):
        raise ValueError(f"{len(stds)} initW values for {len(weighted)} weight layers")
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m, std in zip(weighted, stds):
            m.weight.normal_(0.0, float(std), generator=g)
            m.bias.zero_()


def best_lr(n: dict[str, Any], act: str) -> int:
    """Index of ``act``'s learning rate whose tuning runs reach the target soonest (ties: the smaller lr)."""
    return best_setting(n["tuning"][act], float(n["max_epochs"]))


def best_epochs(n: dict[str, Any], act: str) -> list[float]:
    """Epochs to target of the test seeds at ``act``'s picked learning rate (not reached: the cap)."""
    return [to_target(v, float(n["max_epochs"])) for v in n["epochs"][act]]


class ReluCnnEpochs(Experiment):
    name = "relu_cnn_epochs"
    order = 65
    title = "A ReLU CNN reaches a training-error target in fewer epochs than a tanh CNN"
    claim = ("With each at its best learning rate, a four-layer CNN with ReLUs reaches a training-error target "
             "several times faster (in epochs) than the same CNN with tanh (Krizhevsky et al. 2012: six times, "
             "25% on CIFAR-10).")
    source = ("Krizhevsky, Sutskever & Hinton 2012, ImageNet classification with deep convolutional neural networks, "
              "Figure 1")
    source_found = ("A four-layer CNN with ReLUs reaches 25% training error on CIFAR-10 six times faster (in epochs) "
                    "than the same net with tanh, each with the learning rate that made it train fastest.")
    method = ("Full mode: Fashion-MNIST (a 2,560-image training subset, the per-pixel mean subtracted, pixels in "
              "0-255 units as cuda-convnet fed CIFAR-10); cuda-convnet's layers-18pct CNN (the four-layer CIFAR-10 "
              "net) at a quarter of its widths: 5x5 conv layers of 8, 8, 16 channels, each followed by 3x3 / "
              "stride-2 pooling (max, average, average), then a linear read-out; its init, the same for both "
              "activations: weights from N(0, initW^2) with initW 1e-4, 0.01, 0.01, 0.01 per layer, biases 0. SGD "
              "with momentum 0.9 and batch 128, with ReLU or tanh; each activation's learning rate tuned over its "
              "own grid of three on a tuning seed (fewest epochs; the best must not be at the grid's edge - a "
              "sanity check), then 5 fresh seeds at it. Epochs until the training error on the whole training "
              "subset first reaches 25% (the source's target), checked every 0.1 epoch (every 2 of an epoch's 20 "
              "steps; a run not there after 10 epochs counts as 10, a diverged run as never). Rule: confirmed when "
              "ReLU needs fewer epochs than tanh (Welch's t on log10 epochs at the 5% level); the tanh / ReLU ratio "
              "is reported with its 95% CI beside the source's 6x. Quick mode runs the protocol on 8x8 digits with "
              "PyTorch's default init, max pooling and a 30% target (a proxy).")
    needs = ("fashion_mnist",)

    settings_by_mode = SETTINGS
    # measured: full 565 s on one core (load average 0.8-2.3 on 2 cores; 914 s at load 3-7), numbers identical,
    # quick 8-12 s (load average ~1)
    expected_seconds = {"full": 565.0, "quick": 10.0}

    def proxy(self, mode: Mode) -> str:
        if mode == "full":
            return ("Fashion-MNIST (a 2,560-image subset, 20 steps an epoch) instead of CIFAR-10, and layers-18pct "
                    "at a quarter of its widths without its two response-normalisation layers (for 1 CPU core's "
                    "budget; their effect was not measured). The paper calls Figure 1's net only 'a four-layer "
                    "convolutional neural network': cuda-convnet's four-layer CIFAR-10 example (layers-18pct) is "
                    "taken as it, an assumption. Its pooling and init, the optimiser, batch, target and "
                    "per-activation lr tuning are the source's. Tried: with PyTorch's "
                    "default init (and max pooling, pixels in [0, 1]) tanh was faster - at a 30% target on 2,000 "
                    "images a tanh / ReLU ratio of 0.53 (95% CI 0.46-0.61, 5 seeds), at 25% on 2,560 images 2.7 "
                    "epochs for tanh (lr 0.1) vs 4.9 for ReLU (lr 0.03; 0.1 stalls), one seed; the source's init "
                    "puts both on a small-signal plateau of about 5-6 epochs, ReLU's longer on some seeds.")
        return ("8x8 digits with a small CNN (channels 8-8-16, max pooling, PyTorch's default init), a 30% target "
                "checked every 0.25 epoch: a quick proxy that speaks to this setting only; the full mode runs the "
                "source's protocol on Fashion-MNIST.")

    def measure(self, s: dict[str, Any], progress: Progress) -> dict[str, Any]:
        with torch_threads(1):
            data = load_dataset(s["data"], n=s["n_train"], n_test=s["n_test"], preprocess=s["preprocess"], seed=0)
            # images: (C, S, S), or flat C S^2 with one channel (MNIST-style loaders)
            c = data.input_shape[0] if len(data.input_shape) == 3 else 1
            side = int(round(math.sqrt(data.in_features / c)))
            per_epoch = math.ceil(data.n_train / s["batch_size"])
            every = max(int(round(s["check_every"] * per_epoch)), 1)
            steps = int(math.ceil(s["max_epochs"] * per_epoch))
            lrs = {a: list(s["lrs"][a]) for a in s["activations"]}
            jobs = sum(len(lrs[a]) * len(s["tune_seeds"]) + len(s["seeds"]) for a in s["activations"])
            done = 0

            def run(act: str, lr: float, seed: int) -> tuple[Any, list[list[float]]]:
                nonlocal done
                torch.manual_seed(seed)
                model = ConvNet(c, side, data.out_features, act, s["channels"], tuple(s["pools"]), s["input_scale"])
                if s["init_std"] is None:
                    init_weights(model, "torch_default", seed=seed)
                else:
                    init_per_layer(model, s["init_std"], seed)
                cfg = TrainConfig(loss="ce", optimiser="momentum", lr=lr, momentum=s["momentum"],
                                  batch_size=s["batch_size"], steps=steps, seed=seed, eval_every=every,
                                  eval_train_max=data.n_train, target_metric=f"train_error<={s['target']}", threads=1)
                res = train(model, data, cfg)
                hit = res.steps_to_target
                done += 1
                progress(done / jobs, f"{act} lr {lr:g} seed {seed}")
                return (("diverged" if res.diverged else None if hit is None else hit / per_epoch),
                        [[t / per_epoch for t in res.eval_steps], [float(e) for e in res.train_error]])

            out: dict[str, Any] = {"activations": s["activations"], "lrs": lrs, "target": s["target"],
                                   "max_epochs": s["max_epochs"], "source_ratio": s["source_ratio"],
                                   "check_epochs": every / per_epoch, "tune_seeds": s["tune_seeds"],
                                   "tuning": {}, "epochs": {}, "curves": {}}
            for act in s["activations"]:
                out["tuning"][act] = [[run(act, lr, seed)[0] for seed in s["tune_seeds"]] for lr in lrs[act]]
                lr = lrs[act][best_lr(out, act)]
                runs = [run(act, lr, seed) for seed in s["seeds"]]
                out["epochs"][act], out["curves"][act] = [r[0] for r in runs], [r[1] for r in runs]
            return out

    def decide(self, n: dict[str, Any]) -> Verdict:
        relu, tanh = best_epochs(n, "relu"), best_epochs(n, "tanh")
        check = compare(f"epochs to {n['target'] * 100:g}% training error at the best lr: ReLU < tanh", relu, tanh,
                        expect="less", log=True)
        note = (ratio_text(check, "tanh / ReLU epochs ratio") + f" vs the source's {n['source_ratio']:g}x (runs not "
                f"reaching the target count at {n['max_epochs']:g} epochs)")
        sanity = [inside_grid(f"{act}: learning rate", best_lr(n, act), n["lrs"][act]) for act in n["activations"]]
        return Verdict.from_checks([check], sanity=sanity, note=note)

    def counterfactual(self, n: dict[str, Any]) -> dict[str, Any]:
        """ReLU's runs swapped with tanh's."""
        swap = lambda d: {**d, "relu": d["tanh"], "tanh": d["relu"]}  # noqa: E731
        return {**n, "lrs": swap(n["lrs"]), "tuning": swap(n["tuning"]), "epochs": swap(n["epochs"]),
                "curves": swap(n["curves"])}

    def table(self, n: dict[str, Any]) -> list[dict[str, Any]]:
        cap, rows = float(n["max_epochs"]), []
        for act in n["activations"]:
            b = best_lr(n, act)
            row: dict[str, Any] = {"activation": act}
            row["tuning seed(s): lr: epochs (reached)"] = "; ".join(
                f"{lr:g}: {fmt_to_target(n['tuning'][act][i], cap)}" for i, lr in enumerate(n["lrs"][act]))
            row["picked lr"] = n["lrs"][act][b]
            row["epochs at picked lr (test seeds)"] = fmt_to_target(n["epochs"][act], cap)
            rows.append(row)
        return rows

    def figure(self, n: dict[str, Any], fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        cap = float(n["max_epochs"])
        for act in n["activations"]:
            col = COLORS.get(act)
            v = np.array([[min(to_target(x, cap), cap * 1.1) for x in runs] for runs in n["tuning"][act]])
            ax1.plot(n["lrs"][act], v.mean(1), "o-", color=col, label=f"{act} (tuning)")
            b = best_lr(n, act)
            e = np.array([min(x, cap * 1.1) for x in best_epochs(n, act)])
            ax1.errorbar([n["lrs"][act][b]], [e.mean()], [e.std()], fmt="s", color=col, capsize=3, ms=8,
                         label=f"{act}: test seeds at lr {n['lrs'][act][b]:g}")
            for ep, err in n["curves"][act]:
                ax2.plot(ep, err, "-", color=col, alpha=0.6, lw=1)
            ax2.plot([], [], "-", color=col, label=f"{act} (lr {n['lrs'][act][b]:g})")
        ax1.axhline(cap, color="grey", ls=":", lw=1)
        ax1.set_xscale("log")
        ax1.set_xlabel("learning rate (SGD, momentum 0.9)")
        ax1.set_ylabel(f"epochs to {n['target'] * 100:g}% training error")
        ax1.set_title("learning rate tuned per activation")
        ax2.axhline(n["target"], color="grey", ls=":", lw=1)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("training error (whole training subset)")
        ax2.set_title("each activation at its picked lr (test seeds)")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)


EXPERIMENT = ReluCnnEpochs()
