"""Figures for the theory: the phase diagram and predicted vs measured gradient profiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from actlab.plot.style import ACCENT, DF_COLOR, F_COLOR, figure, save, style
from actlab.theory.compare import Comparison
from actlab.theory.meanfield import (
    TheoryError,
    _act,
    _check_sigmas,
    _critical,
    _eval_q,
    _q_star,
)

__all__ = ["DOC_SETTINGS", "gradient_figure", "measured_figure", "phase_diagram", "phase_grid"]


def phase_grid(activation: str, sigma_w2: Sequence[float], sigma_b2: Sequence[float],
               **params: Any) -> np.ndarray:
    """``chi_1`` on the grid ``sigma_b2 x sigma_w2`` (rows: sigma_b2)."""
    a = _act(activation, params)
    out = np.empty((len(sigma_b2), len(sigma_w2)))
    for i, sb in enumerate(sigma_b2):
        for j, sw in enumerate(sigma_w2):
            sw_, sb_ = _check_sigmas(sw, sb)
            out[i, j] = sw_ * a.one_d(_eval_q(_q_star(a, sw_, sb_, 1.0)))[1]
    return out


def phase_diagram(activation: str, sigma_w2_max: float | None = None, sigma_b2_max: float = 0.5, n: int = 48,
                  out: str | Path | None = None, **params: Any) -> Figure:
    """Ordered / chaotic phases of ``activation`` over ``(sigma_w^2, sigma_b^2)``: colour is
    ``log chi_1`` (blue: gradients vanish, red: they explode), the black line the edge of chaos
    ``chi_1 = 1`` (:func:`critical_sigma_w2` per ``sigma_b^2``).

    Args:
        activation: catalog name.
        sigma_w2_max: right edge of the plot. Default: three times the critical value at
            ``sigma_b^2 = 0`` (or 5 when there is none).
        sigma_b2_max: top edge. Default: ``0.5``.
        n: grid points per axis. Default: ``48``.
        out: PNG path to write, if given.
    """
    a = _act(activation, params)
    if n < 4:
        raise TheoryError(f"n must be >= 4, got {n!r}")
    if not (sigma_b2_max > 0 and math.isfinite(sigma_b2_max)):
        raise TheoryError(f"sigma_b2_max must be > 0, got {sigma_b2_max!r}")
    if sigma_w2_max is None:
        try:
            sigma_w2_max = 3 * _critical(a, 0.0)
        except TheoryError:
            sigma_w2_max = 5.0
    _check_sigmas(sigma_w2_max, 0.0)
    sws = np.linspace(sigma_w2_max / n, sigma_w2_max, n)
    sbs = np.linspace(0.0, sigma_b2_max, n)
    chi = phase_grid(a.spec.name, sws, sbs, **a.public_params())
    logc = np.log(np.clip(chi, 1e-12, None))
    # The edge of chaos rises steeply from sigma_b^2 = 0: sample it geometrically there.
    crit_b = np.concatenate([[0.0], np.geomspace(sigma_b2_max * 1e-4, sigma_b2_max, 28)])
    crit_w = []
    for sb in crit_b:
        try:
            crit_w.append(_critical(a, float(sb)))
        except TheoryError:
            crit_w.append(np.nan)
    # Each side of the edge gets its own colour range (clipped at |log chi_1| = 1), so a chaotic
    # side with only modest chi_1 still shows red.
    lo = -min(max(-float(np.nanmin(logc)), 0.05), 1.0)
    hi = min(max(float(np.nanmax(logc)), 0.05), 1.0)
    with style():
        fig = figure(6.4, 4.6)
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(sws, sbs, logc, cmap="RdBu_r", shading="nearest",
                             norm=TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi))
        cb = fig.colorbar(mesh, ax=ax, extend="both")
        cb.set_label(r"$\log \chi_1$ (per-layer change of log squared gradient norm)")
        ax.plot(crit_w, crit_b, color="black", lw=2, label=r"edge of chaos $\chi_1 = 1$")
        ax.set_xlim(sws[0], sws[-1])
        ax.set_ylim(0, sigma_b2_max)
        ax.set_xlabel(r"$\sigma_w^2$ (weight variance $\times$ fan-in)")
        ax.set_ylabel(r"$\sigma_b^2$ (bias variance)")
        ax.text(0.03, 0.95, "ordered\n(gradients vanish)", transform=ax.transAxes, va="top", color=F_COLOR,
                fontsize=9, bbox={"fc": "white", "ec": "none", "alpha": 0.7})
        ax.text(0.97, 0.05, "chaotic\n(gradients explode)", transform=ax.transAxes, ha="right", color=DF_COLOR,
                fontsize=9, bbox={"fc": "white", "ec": "none", "alpha": 0.7})
        ax.set_title(f"Mean-field phase diagram: {a.spec.title}")
        ax.grid(False)
        ax.legend(loc="upper right")
        if out is not None:
            save(fig, out)
    return fig


def gradient_figure(comparisons: Sequence[Comparison], out: str | Path | None = None) -> Figure:
    """One panel per activation: measured per-layer pre-activation gradient norms (markers, mean
    over seeds with the seed spread) on the predicted line, one colour per ``sigma_w^2``; below,
    measured / predicted."""
    acts = list(dict.fromkeys(c.activation for c in comparisons))
    colors = [F_COLOR, DF_COLOR, ACCENT, "#CC79A7", "#E69F00", "#56B4E9"]
    with style():
        fig = figure(4.0 * len(acts), 5.6)
        grid = fig.add_gridspec(2, len(acts), height_ratios=[3, 1.2])
        for j, act in enumerate(acts):
            ax = fig.add_subplot(grid[0, j])
            axr = fig.add_subplot(grid[1, j], sharex=ax)
            cs = [c for c in comparisons if c.activation == act]
            for k, c in enumerate(cs):
                col = colors[k % len(colors)]
                layers = np.arange(1, c.depth + 1)
                lab = rf"$\sigma_w^2$={c.sigma_w2:g}" + (rf", $\sigma_b^2$={c.sigma_b2:g}" if c.sigma_b2 else "")
                ax.plot(layers, c.predicted, color=col, lw=1.6, label=lab + " (theory)")
                ax.errorbar(layers, c.measured, yerr=c.measured_std, fmt="o", ms=3.5, color=col, mfc="white",
                            capsize=0, lw=0.8)
                axr.plot(layers, c.ratio, "o-", ms=3, lw=0.8, color=col,
                         label=f"max dev {100 * c.max_deviation:.1f}%")
            ax.set_yscale("log")
            ax.set_title(f"{act}: width {cs[0].width}, {cs[0].seeds} seeds")
            ax.set_ylabel(r"RMS $\|\partial L / \partial u^l\|$" if j == 0 else "")
            ax.legend(fontsize=7, loc="best")
            axr.axhspan(0.9, 1.1, color="#999999", alpha=0.15, lw=0)
            axr.axhline(1.0, color="black", lw=0.8)
            axr.set_ylim(0.85, 1.15)
            axr.set_xlabel("hidden layer l")
            axr.set_ylabel("measured / theory" if j == 0 else "")
            axr.legend(fontsize=7, loc="lower right")
        fig.suptitle("Gradient norms at initialisation: mean-field prediction (lines) vs measurement (dots)")
        if out is not None:
            save(fig, out)
    return fig


DOC_SETTINGS: tuple[tuple[str, float, float, dict], ...] = (
    ("tanh", 1.0, 0.0, {}), ("tanh", 1.5, 0.05, {}), ("tanh", 2.5, 0.0, {}),
    ("relu", 1.5, 0.0, {}), ("relu", 2.0, 0.0, {}), ("relu", 2.5, 0.1, {}),
    ("sigmoid", 1.0, 0.0, {}), ("sigmoid", 4.0, 0.0, {}), ("sigmoid", 16.0, 0.0, {}),
)
"""The settings of ``docs/theory_vs_measured.png`` and of the acceptance test."""


def measured_figure(out: str | Path, settings: Sequence[tuple[str, float, float, dict]] = DOC_SETTINGS,
                    depth: int = 20, width: int = 1000, seeds: int = 5, batch: int = 32,
                    threads: int | None = 1) -> list[Comparison]:
    """Measure ``settings`` (see :func:`compare_many`), write the figure to ``out``, return the data.

    ``python -c "from actlab.theory.plots import measured_figure as m; m('docs/theory_vs_measured.png')"``
    regenerates the docs figure (about 20 s on 2 CPU cores).
    """
    from actlab.theory.compare import compare_many

    cs = compare_many(settings, depth=depth, width=width, seeds=seeds, batch=batch, threads=threads)
    gradient_figure(cs, out=out)
    return cs
