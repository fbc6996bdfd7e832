"""PNG plots of the probe's records (matplotlib, Agg backend).

Each quantity with a plot (:mod:`actlab.probe.quantities`) is a kind named by its key and draws
itself; :data:`KINDS` adds the figures that put several together: ``"dead_saturated"`` (the
``dead`` and ``saturated`` quantities side by side) and ``"grad_profile"`` (gradient norm against
depth at chosen steps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from actlab.plot.style import save
from actlab.probe.quantities import QUANTITIES
from actlab.probe.quantities.base import colours
from actlab.probe.records import ProbeRecords

_BY_KEY = {q.key: q for q in QUANTITIES if q.plot is not None}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2, loc="best")


def _panels(keys: Sequence[str]) -> Callable[..., Path]:
    """A figure of the plots of ``keys`` side by side, each titled by its quantity's doc."""

    def draw(data: ProbeRecords, out: Path, **kw: Any) -> Path:
        plt = _plt()
        fig, axes = plt.subplots(1, len(keys), figsize=(3 + 4 * len(keys), 4), squeeze=False)
        for ax, key in zip(axes[0], keys):
            q = _BY_KEY[key]
            q.plot(data, ax)  # type: ignore[misc]
            ax.set_title(q.doc if len(q.doc) < 60 else q.key, fontsize=9)
            _legend(ax)
        fig.tight_layout()
        save(fig, out, dpi=120)
        plt.close(fig)
        return out

    draw.__doc__ = " and ".join(_BY_KEY[k].doc for k in keys)
    return draw


def grad_profile(data: ProbeRecords, out: Path, steps: Sequence[int] | None = None, which: str = "params",
                 **kw: Any) -> Path:
    """Gradient norm against layer depth (input on the left) at chosen steps (log scale)."""
    plt = _plt()
    if steps is None:
        have = [s for s in data.steps() if data.layer_grad_norms(s, which=which)]
        steps = sorted({have[0], have[len(have) // 2], have[-1]}) if have else []
    fig, ax = plt.subplots(figsize=(7, 4))
    names: list[str] = []
    for st, c in zip(steps, colours(len(steps))):
        g = data.layer_grad_norms(st, which=which)
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
    _legend(ax)
    fig.tight_layout()
    save(fig, out, dpi=120)
    plt.close(fig)
    return out


KINDS: dict[str, Callable[..., Path]] = {
    **{key: _panels([key]) for key in _BY_KEY},
    "dead_saturated": _panels(["dead", "saturated"]),
    "grad_profile": grad_profile,
}


def plot(data: ProbeRecords, kind: str, out: Any = None, **kw: Any) -> Path:
    """Save the plot ``kind`` (one of :data:`KINDS`) to ``out`` (default ``probe_<kind>.png``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; choose from {', '.join(KINDS)}")
    if not data.records:
        raise ValueError("nothing recorded yet: train with the probe attached before plotting")
    out = Path(out) if out is not None else Path(f"probe_{kind}.png")
    return KINDS[kind](data, out, **kw)
