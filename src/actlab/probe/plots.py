"""PNG plots of the probe's records (matplotlib, Agg backend).  Each kind owns its data and its
figure: :data:`KINDS` maps the name to the function."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from actlab.plot.style import save

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.probe import Probe


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(probe: "Probe", field: str, pred: Callable[[Any], bool] = lambda r: True):
    out: dict[str, tuple[list[int], list[float], int]] = {}
    for r in probe.records():
        v = getattr(r, field)
        if not pred(r) or v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        s, vals, order = out.setdefault(r.layer, ([], [], r.order))
        s.append(r.step)
        vals.append(v)
    return dict(sorted(out.items(), key=lambda kv: kv[1][2]))


def _colours(n: int):
    plt = _plt()
    cmap = plt.get_cmap("viridis")
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def _finish(fig, ax, out: Path, legend: bool = True) -> Path:
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    save(fig, out, dpi=120)
    _plt().close(fig)
    return out


def grad_norm(probe: "Probe", out: Path, **kw: Any) -> Path:
    """Gradient norm of each parametrised layer over steps (log scale), input side dark."""
    plt = _plt()
    data = _series(probe, "grad_norm", lambda r: r.grad_norm > 0)
    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, (s, v, _)), c in zip(data.items(), _colours(len(data))):
        ax.plot(s, v, color=c, label=name, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("||grad|| of the layer's parameters")
    ax.set_title("Gradient norm per layer")
    return _finish(fig, ax, out)


def dead_saturated(probe: "Probe", out: Path, **kw: Any) -> Path:
    """Dead-unit fraction and saturated fraction of each activation layer over steps."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, field, title in ((axes[0], "dead", "dead units (f' = 0 over the window)"),
                             (axes[1], "saturated", "saturated (sample, unit)")):
        data = _series(probe, field)
        for (name, (s, v, _)), c in zip(data.items(), _colours(len(data))):
            ax.plot(s, [100 * x for x in v], color=c, label=name, lw=1.2)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("step")
        ax.set_ylabel("%")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save(fig, out, dpi=120)
    plt.close(fig)
    return out


def activations(probe: "Probe", out: Path, **kw: Any) -> Path:
    """Activation mean +- std of each activation layer over steps (Glorot & Bengio's figure)."""
    plt = _plt()
    mean = _series(probe, "mean", lambda r: bool(r.activation))
    std = _series(probe, "std", lambda r: bool(r.activation))
    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, (s, m, _)), c in zip(mean.items(), _colours(len(mean))):
        sd = dict(zip(std.get(name, ([], [], 0))[0], std.get(name, ([], [], 0))[1]))
        lo = [mi - sd.get(si, math.nan) for si, mi in zip(s, m)]
        hi = [mi + sd.get(si, math.nan) for si, mi in zip(s, m)]
        ax.plot(s, m, color=c, label=name, lw=1.2)
        ax.fill_between(s, lo, hi, color=c, alpha=0.15)
    ax.set_xlabel("step")
    ax.set_ylabel("activation value")
    ax.set_title("Activation mean +- std per layer")
    return _finish(fig, ax, out)


def grad_profile(probe: "Probe", out: Path, steps: Sequence[int] | None = None, which: str = "params",
                 **kw: Any) -> Path:
    """Gradient norm against layer depth (input on the left) at chosen steps (log scale)."""
    plt = _plt()
    recorded = probe.steps()
    if steps is None:
        have = [s for s in recorded if probe.layer_grad_norms(s, which=which)]
        steps = sorted({have[0], have[len(have) // 2], have[-1]}) if have else []
    fig, ax = plt.subplots(figsize=(7, 4))
    names: list[str] = []
    for st, c in zip(steps, _colours(len(steps))):
        g = probe.layer_grad_norms(st, which=which)
        if not g:
            continue
        names = list(g)
        ax.plot(range(len(g)), list(g.values()), "o-", color=c, label=f"step {st}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, fontsize=7)
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel("||grad||")
    ax.set_title("Gradient profile across layers")
    return _finish(fig, ax, out)


KINDS: dict[str, Callable[..., Path]] = {
    "grad_norm": grad_norm,
    "dead_saturated": dead_saturated,
    "activations": activations,
    "grad_profile": grad_profile,
}


def plot(probe: "Probe", kind: str, out: Any = None, **kw: Any) -> Path:
    """Save the plot ``kind`` (one of :data:`KINDS`) to ``out`` (default ``probe_<kind>.png``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; choose from {', '.join(KINDS)}")
    if not probe.records():
        raise ValueError("nothing recorded yet: train with the probe attached before plotting")
    out = Path(out) if out is not None else Path(f"probe_{kind}.png")
    return KINDS[kind](probe, out, **kw)
