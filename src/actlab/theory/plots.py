"""Figures for the theory: the phase diagram (predicted vs measured gradient profiles live with the
measurement, in :mod:`actlab.lab.compare`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from actlab.plot.style import DF_COLOR, F_COLOR, figure, save, style
from actlab.theory.meanfield import (
    TheoryError,
    _act,
    _check_sigmas,
    _critical,
    _eval_q,
    _q_star,
)

__all__ = ["phase_diagram", "phase_grid"]


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
