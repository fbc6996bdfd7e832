"""Step-time overhead of the probe: forward + backward + SGD step of an MLP (depth 10, width 256,
batch 256), a small CNN and a transformer (two BERT-style encoder layers, GELU called functionally), with no probe, the probe every step, every 10 steps, a naive recorder
that calls ``.item()`` per layer per step, and Cockpit's "economy" configuration when
``cockpit-for-pytorch`` is installed.

Variants run interleaved: within a repetition they take turns every 10 steps (the order rotating
each turn), so a machine shared with other jobs, or one whose clock drifts, slows them alike; each
repetition builds fresh models (where a model's tensors land in memory moves its step time by a
few percent, a bias interleaving alone would not remove).  The table gives, per variant, the median
step time and the median of the per-repetition ratios to "no probe" with its 95% confidence
interval (order statistics: no assumption on the distribution), for two clocks: the CPU time of
this process (with one torch thread, the default here, it is the step's own work and barely
moves when other jobs compete for the cores) and wall time (which then also counts the waiting).
A target is "met" when the CPU ratio's interval lies below it, "missed" when it lies above, and
"undecided" when it straddles it (run more repetitions).

A repetition runs 80 steps per variant by default, more than the probe's longest period (it
stacks its on-device records every 64 recorded steps): with 20-step repetitions most missed that
flush and their median understated the amortised cost by ~3%.  The defaults (11 repetitions, no
naive recorder) should take about 5-6 minutes for the three models on the idle 2-core CPU (scaled
from 13.7 minutes for 21 repetitions of four variants, not timed themselves); ``--reps 21 --naive``
is the long form.

    python benchmarks/probe_overhead.py                 # all three models, table
    python benchmarks/probe_overhead.py --json-out out.json --reps 15 --steps 80 --models mlp
    python benchmarks/probe_overhead.py --reps 21 --naive   # the long form, with the naive recorder

Exits 1 when a target is missed or cannot be told from it (the median CPU-time ratio's 95% interval
against `TARGETS` every step, 1.03x every 10 steps); the verdict is met / missed / undecided.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from _bench import add_output_options, describe_machine, finish, machine, parse, progress, tables

from actlab.probe import Probe

# ---- settings (units in comments)
DEPTH = 10          # Linear layers in the MLP
WIDTH = 256         # hidden units
BATCH = 256         # MLP batch size
CNN_BATCH = 64      # CNN batch size (3x32x32 inputs)
LR = 0.01           # SGD learning rate
D_MODEL = 128       # transformer width
SEQ = 32            # transformer sequence length
TF_BATCH = 32       # transformer batch size
TARGETS = {"mlp": 1.10, "cnn": 1.10, "transformer": 1.15}  # every-step ratio targets (every 10: 1.03)
BLOCK = 10          # steps per turn: the variants take turns every BLOCK steps within a repetition


def mlp() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(DEPTH - 1):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    layers.append(nn.Linear(WIDTH, 10))
    return nn.Sequential(*layers)


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(64, 10),
    )


class Transformer(nn.Module):
    """Two BERT-style encoder layers (post-LayerNorm, F.gelu inside forward, dropout 0.1), mean-pooled."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(D_MODEL, 4, 4 * D_MODEL, dropout=0.1,
                                                               activation="gelu", batch_first=True)
                                    for _ in range(2))
        self.head = nn.Linear(D_MODEL, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x.mean(1))


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": lambda: mlp(), "cnn": lambda: cnn(), "transformer": Transformer}


def data(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if kind == "transformer":
        return torch.randn(TF_BATCH, SEQ, D_MODEL, generator=g), torch.randint(0, 10, (TF_BATCH,), generator=g)
    if kind == "mlp":
        return torch.randn(BATCH, WIDTH, generator=g), torch.randint(0, 10, (BATCH,), generator=g)
    return torch.randn(CNN_BATCH, 3, 32, 32, generator=g), torch.randint(0, 10, (CNN_BATCH,), generator=g)


class NaiveRecorder:
    """What one writes first: hooks that compute statistics and call ``.item()`` every step."""

    def __init__(self, model: nn.Module) -> None:
        self.rows: list[tuple] = []
        self.handles = [m.register_forward_hook(self.hook) for m in model.modules() if isinstance(m, nn.ReLU)]
        # (the transformer's F.gelu is no module: the naive recorder sees only its parameters there)
        self.params = list(model.parameters())

    def hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        o = out.detach()
        std, mean = torch.std_mean(o)
        self.rows.append((mean.item(), std.item(), (o == 0).float().mean().item()))

    def after_backward(self) -> None:
        self.rows.append(tuple(p.grad.norm().item() for p in self.params))


def _pkg_resources_shim() -> None:
    """Cockpit 1.0.2 imports ``pkg_resources`` only for its version string; new setuptools lacks it."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import importlib.metadata
        import types

        mod = types.ModuleType("pkg_resources")
        mod.DistributionNotFound = importlib.metadata.PackageNotFoundError  # type: ignore[attr-defined]
        mod.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = mod


def make_variant(name: str, kind: str, probe: type = Probe) -> Callable[[], None] | None:
    """One SGD step of a fresh ``kind`` model under variant ``name`` (``None``: not available here);
    ``probe`` is the probe class the "probe ..." variants attach (another tree's, side by side)."""
    torch.manual_seed(0)
    model = MODELS[kind]()
    x, y = data(kind)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    if name == "cockpit economy":
        try:
            _pkg_resources_shim()
            from backpack import extend
            from cockpit import Cockpit
            from cockpit.utils.configuration import configuration
        except Exception:
            return None
        model = extend(model)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        lossfunc = extend(nn.CrossEntropyLoss())
        ind = nn.CrossEntropyLoss(reduction="none")
        cockpit = Cockpit(model.parameters(), quantities=configuration("economy"))
        state = {"step": 0}

        def step() -> None:
            opt.zero_grad()
            out = model(x)
            loss = lossfunc(out, y)
            losses = ind(out, y)
            with cockpit(state["step"], info={"batch_size": x.shape[0], "individual_losses": losses,
                                              "loss": loss, "optimizer": opt}):
                loss.backward(create_graph=cockpit.create_graph(state["step"]))
            opt.step()
            state["step"] += 1

        return step
    naive = NaiveRecorder(model) if name == "naive .item()" else None
    if name.startswith("probe"):
        every = 1 if name == "probe every step" else 10
        probe(model, every=every).attach()  # stays attached for the whole benchmark

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if naive is not None:
            naive.after_backward()
            naive.rows.clear()
        opt.step()

    return step


VARIANTS = ["no probe", "probe every step", "probe every 10", "naive .item()", "cockpit economy"]


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval of the median: the order statistics ``(x_(k), x_(n+1-k))``
    with the largest ``k`` whose two-sided binomial tail stays within ``1 - level``."""
    xs = sorted(values)
    n = len(xs)
    k, tail = 0, 0.0
    while True:  # P(Binomial(n, 1/2) <= k) for growing k
        nxt = tail + math.comb(n, k) / 2 ** n
        if 2 * nxt > 1 - level:
            break
        tail, k = nxt, k + 1
    if k == 0:  # too few repetitions for this level: the whole range
        return xs[0], xs[-1]
    return xs[k - 1], xs[n - k]


def bench(kind: str, reps: int, steps: int, warmup: int, variants: list[str] = VARIANTS,
          make: Callable[[str, str], Callable[[], None] | None] = make_variant) -> dict:
    """Time ``variants`` of ``kind`` interleaved; ``make(name, kind)`` builds each (default
    :func:`make_variant`), so a caller may add variants of its own beside "no probe"."""
    names = [v for v in variants if make(v, kind) is not None]
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in names}
    for rep in range(reps):
        progress(f"{kind}: repetition {rep + 1}/{reps}")
        # Fresh models every repetition: where a model's tensors land in memory moves its step time
        # by a few percent, a bias that interleaving alone would not remove.
        fns = {v: make(v, kind) for v in names}
        for k, f in fns.items():
            for _ in range(warmup if "cockpit" not in k else 2):
                f()
        order = names[rep % len(names):] + names[: rep % len(names)]
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        done = dict.fromkeys(names, 0)
        for _ in range(steps // BLOCK):
            for k in order:
                f = fns[k]
                # Cockpit computes per-sample gradients (BackPACK) and is ~100x slower on CPU: 1 step a turn
                n = BLOCK if "cockpit" not in k else 1
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(n):
                    f()
                wall[k] += time.perf_counter() - t0
                cpu[k] += time.process_time() - c0
                done[k] += n
            order = order[1:] + order[:1]  # no variant always runs right after the same other one
        for k in names:
            times[k]["wall"].append(wall[k] / done[k])
            times[k]["cpu"].append(cpu[k] / done[k])
    out: dict[str, dict] = {}
    for k in names:
        out[k] = {}
        for clock in ("wall", "cpu"):
            ts, base = times[k][clock], times["no probe"][clock]
            ratios = [t / b for t, b in zip(ts, base)]
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
            lo, hi = median_ci(ratios)
            out[k][clock] = {"median_ms": 1e3 * statistics.median(ts), "ratio_median": statistics.median(ratios),
                             "ratio_q1": q1, "ratio_q3": q3, "ratio_ci95": [lo, hi],
                             "ratio_of_medians": statistics.median(ts) / statistics.median(base), "ratios": ratios}
    return out


def verdict(ci: tuple[float, float] | list[float], target: float) -> str:
    """``"met"`` (the interval lies at or below the target), ``"missed"`` (above) or ``"undecided"``."""
    return "met" if ci[1] <= target else "missed" if ci[0] > target else "undecided"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="mlp,cnn,transformer", help="comma-separated: mlp, cnn, transformer")
    ap.add_argument("--reps", type=int, default=11,
                    help="repetitions (fresh models each); the median ratio's 95%% interval narrows with more")
    ap.add_argument("--steps", type=int, default=80,
                    help="steps per repetition and variant, in turns of 10 (multiple of 10; >= 64 so that each repetition "
                         "carries the probe's periodic work: the update ratio every 10 steps, the flush of "
                         "its records every 64)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps of each fresh model")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (0: torch's default); 1 keeps timings stable on a shared machine")
    ap.add_argument("--no-cockpit", action="store_true", help="leave Cockpit out (it is slow to run)")
    ap.add_argument("--naive", action="store_true",
                    help="also time the naive recorder (.item() per layer per step), a reference point")
    add_output_options(ap)
    a = parse(ap, argv)
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    if a.steps % 10:
        ap.error(f"--steps must be a multiple of 10 so 'every 10' is measured fairly, got {a.steps}")
    if a.threads:
        torch.set_num_threads(a.threads)
    kinds = [k.strip() for k in a.models.split(",")]
    for kind in kinds:
        if kind not in MODELS:
            ap.error(f"unknown model {kind!r}; choose from {', '.join(MODELS)}")
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "reps": a.reps, "steps": a.steps,
              "machine": machine(), "models": {}, "targets": []}
    with tables(a):
        print(describe_machine(result["machine"]))
        for kind in kinds:
            r = bench(kind, a.reps, a.steps, a.warmup, [v for v in VARIANTS if not (a.no_cockpit and "cockpit" in v)
                                                         and (a.naive or "naive" not in v)])
            result["models"][kind] = r
            print(f"\n{kind}: step time, median of {a.reps} interleaved repetitions x {a.steps} steps "
                  f"({torch.get_num_threads()} torch threads)")
            print(f"{'variant':<20}{'cpu ms':>8}{'cpu ratio':>11}{'(95% CI)':>16}{'wall ms':>9}{'wall ratio':>12}"
                  f"{'(95% CI)':>16}")
            for k, v in r.items():
                c, w = v["cpu"], v["wall"]
                print(f"{k:<20}{c['median_ms']:>8.2f}{c['ratio_median']:>10.3f}x   {c['ratio_ci95'][0]:.3f}-"
                      f"{c['ratio_ci95'][1]:.3f}{w['median_ms']:>9.2f}{w['ratio_median']:>11.3f}x   "
                      f"{w['ratio_ci95'][0]:.3f}-{w['ratio_ci95'][1]:.3f}", flush=True)
            target = {"probe every step": TARGETS[kind], "probe every 10": 1.03}
            for k, t in target.items():
                if k in r:
                    c = r[k]["cpu"]
                    v = verdict(c["ratio_ci95"], t)
                    result["targets"].append({"model": kind, "variant": k, "target": t, "cpu_ratio": c["ratio_median"],
                                              "ci95": list(c["ratio_ci95"]), "verdict": v, "met": v == "met"})
                    print(f"  target {k}: <= {t:.2f}x, cpu ratio {c['ratio_median']:.3f}x "
                          f"(95% CI {c['ratio_ci95'][0]:.3f}-{c['ratio_ci95'][1]:.3f}): {v}")
        if not a.no_cockpit and "cockpit economy" not in next(iter(result["models"].values())):
            print("\n(cockpit-for-pytorch not installed: no Cockpit row)")
    result["load_avg_end"] = list(os.getloadavg())
    print(f"load average at the end {result['load_avg_end'][0]:.1f}")
    return finish(a, result, failed=[f"{t['model']} {t['variant']} ({t['verdict']})" for t in result["targets"]
                                     if not t["met"]])


if __name__ == "__main__":
    sys.exit(main())
