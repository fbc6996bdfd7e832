"""Plots of an activation and its derivative, drawn from the catalog spec alone.

What a plot shows, for any spec at any hyperparameters:

- f and f' (the spec's own ``forward`` and analytic ``derivative``), broken at jumps and kinks
  so no false vertical segments are drawn;
- shaded saturating regions: on each side the spec declares as saturating, the stretch that
  reaches the plot's edge where ``|f'| < 5%`` of ``max |f'|``;
- kinks: f at the kink as a dot, and on f' the declared convention (the value backward uses at
  exactly the kink) as a filled dot beside the one-sided derivatives as open circles;
- for a stochastic forward (RReLU in training), sampled training-mode values as faint dots;
- for maxout, which maps k inputs to one output, an illustration: one unit over k affine
  pieces ``w_i x + b_i`` of a scalar x, with f' the slope of the winning piece.

Example::

    >>> from actlab.plot.activations import plot_activation
    >>> fig = plot_activation("leaky_relu", {"negative_slope": 0.1}, path="leaky.png")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from actlab.activations import ActivationSpec, get, specs
from actlab.activations.moments import max_abs_derivative
from actlab.activations.regions import SATURATION_TOL

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# matplotlib (and actlab.plot.style, which imports it) is loaded by the drawing functions only:
# :func:`curves` alone, which the playground calls for its saturated regions, then costs no
# matplotlib import (~0.3 s) on the way to the first frame.

HALF_WIDTH = 5.0
"""Default plot range is ``[-HALF_WIDTH, HALF_WIDTH]``, widened to show every kink."""

_N = 1201


@dataclass
class KinkMark:
    """A kink as drawn: where, f there, and f' (convention and one-sided limits)."""

    x: float
    f: float
    f_left: float
    f_right: float
    derivative: float
    left: float
    right: float
    jump: bool


@dataclass
class Curves:
    """Sampled f and f' of one spec on ``[lo, hi]``, ready to draw.

    ``x_f``/``f`` and ``x_df``/``df`` hold NaN where the line must break (jumps of f, kinks of f').
    ``saturated`` lists the shaded ``(start, end)`` intervals; ``max_df`` is ``sup |f'|`` used for them.
    """

    spec: ActivationSpec
    params: dict[str, Any]
    lo: float
    hi: float
    x_f: np.ndarray
    f: np.ndarray
    x_df: np.ndarray
    df: np.ndarray
    max_df: float
    saturated: list[tuple[float, float]]
    kinks: list[KinkMark]
    samples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # x, f, f' in training mode
    pieces: tuple[np.ndarray, np.ndarray] | None = None  # maxout illustration: slopes w, intercepts b
    notes: list[str] = field(default_factory=list)


def default_range(spec: ActivationSpec, params: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """``[-5, 5]``, widened so that every kink sits at least 2 inside the edges."""
    p = _params(spec, params)
    xs = [k.x for k in spec.kinks(p)] if spec.elementwise else []
    lo = min([-HALF_WIDTH, *(x - 2.0 for x in xs)])
    hi = max([HALF_WIDTH, *(x + 2.0 for x in xs)])
    return float(lo), float(hi)


def maxout_pieces(k: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of the k pieces in the maxout illustration.

    The pieces are tangents to a parabola at evenly spaced points, shifted so that k = 2 gives
    ``max(-x, x) = |x|``: every piece wins somewhere, and more pieces approximate a convex curve
    (the maxout paper's point). k = 1 is the identity.
    """
    if k == 1:
        return np.array([1.0]), np.array([0.0])
    w = np.linspace(-1.0, 1.0, k)
    scale = (hi - lo) / 4
    return w, scale * (1 - w * w) / 2


def curves(
    spec: ActivationSpec | str,
    params: Mapping[str, Any] | None = None,
    x_range: tuple[float, float] | None = None,
    n: int = _N,
) -> Curves:
    """Sample f and f' of ``spec`` at ``params`` (validated; defaults fill the rest) on ``x_range``."""
    spec = get(spec)
    p = _params(spec, params)
    lo, hi = x_range if x_range is not None else default_range(spec, p)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"plot range must be finite with LO < HI, got ({lo:g}, {hi:g})")
    if not spec.elementwise:
        return _maxout_curves(spec, p, lo, hi, n)

    eps = 1e-9 * (hi - lo)
    kinks = [k for k in spec.kinks(p) if lo < k.x < hi]
    grid = np.linspace(lo, hi, n)
    for k in kinks:
        grid = grid[np.abs(grid - k.x) > 2 * eps]
    x = np.unique(np.concatenate([grid, *([k.x - eps, k.x + eps] for k in kinks)]))
    f, df = _eval(spec, p, x)
    at = _eval(spec, p, np.array([k.x for k in kinks]))[0] if kinks else np.array([])

    max_df = _max_df(spec, p, df)
    saturated = saturated_regions(x, df, spec.saturates, max_df)

    # Break f at jumps and f' at every kink: insert NaN between the two sides (after x = k - eps).
    x_f, f_b, x_df, df_b = x, f, x, df
    for k in sorted(kinks, key=lambda k: -k.x):
        i = int(np.searchsorted(x, k.x))
        x_df, df_b = np.insert(x_df, i, k.x), np.insert(df_b, i, np.nan)
        if k.jump:
            x_f, f_b = np.insert(x_f, i, k.x), np.insert(f_b, i, np.nan)
    marks = []
    for k, fk in zip(kinks, at):
        i = int(np.searchsorted(x, k.x))
        marks.append(KinkMark(k.x, float(fk), float(f[i - 1]), float(f[i]), k.derivative, k.left, k.right, k.jump))

    c = Curves(spec, p, lo, hi, x_f, f_b, x_df, df_b, max_df, saturated, marks)
    c.samples = _training_samples(spec, p, lo, hi)
    c.notes = _notes(spec, p, c)
    return c


def saturated_regions(
    x: np.ndarray, df: np.ndarray, side: str, max_df: float, fraction: float = SATURATION_TOL
) -> list[tuple[float, float]]:
    """Intervals reaching the left and/or right edge (per ``side``) where ``|f'| < fraction * max_df``
    (the probe's saturation rule, :data:`~actlab.activations.regions.SATURATION_TOL` by default).

    A flat stretch in the middle (GELU's f' crossing zero near x = -0.75) is not saturation and
    is not returned. Where f' is zero everywhere (step, sign) the whole range is returned.
    """
    if side == "none" or len(x) == 0:
        return []
    a = np.abs(df)
    if max_df <= 0:
        return [(float(x[0]), float(x[-1]))]
    thr = fraction * max_df
    low = a < thr
    out: list[tuple[float, float]] = []
    if side in ("left", "both") and low[0]:
        j = int(np.argmin(low)) if not low.all() else len(x) - 1
        out.append((float(x[0]), _crossing(x, a, thr, j - 1, j) if not low.all() else float(x[-1])))
    if side in ("right", "both") and low[-1] and not low.all():
        j = len(x) - 1 - int(np.argmin(low[::-1]))
        out.append((_crossing(x, a, thr, j, j + 1), float(x[-1])))
    return out


def draw(ax: Axes, c: Curves, *, compact: bool = False) -> None:
    """Draw ``c`` on ``ax``: shading, f, f', kinks, samples; a legend unless ``compact``."""
    from actlab.plot import style

    lw = 1.4 if compact else 2.0
    ms = 3.5 if compact else 6.0
    for i, (a, b) in enumerate(c.saturated):
        label = None
        if i == 0:
            label = "f' = 0: no gradient" if c.max_df <= 0 else (
                f"saturated: |f'| < {SATURATION_TOL:.0%} of max |f'|")
        ax.axvspan(a, b, color=style.SAT_COLOR, alpha=0.18, lw=0, label=label)
    if c.pieces is not None:
        w, b = c.pieces
        xs = np.array([c.lo, c.hi])
        for i, (wi, bi) in enumerate(zip(w, b)):
            ax.plot(xs, wi * xs + bi, color=style.ACCENT, lw=0.9, ls=":", alpha=0.9,
                    label=r"pieces $w_i x + b_i$" if i == 0 else None)
    if c.samples is not None:
        xs, fs, dfs = c.samples
        ax.scatter(xs, fs, s=3 if compact else 5, color=style.F_COLOR, alpha=0.35, lw=0,
                   label="f, training mode (random)")
        ax.scatter(xs, dfs, s=3 if compact else 5, color=style.DF_COLOR, alpha=0.35, lw=0,
                   label="f', training mode")
    ax.plot(c.x_f, c.f, color=style.F_COLOR, lw=lw, label="f(x)")
    ax.plot(c.x_df, c.df, color=style.DF_COLOR, lw=lw, ls="--", label="f'(x)")
    for i, k in enumerate(c.kinks):
        first = i == 0
        ax.plot([k.x], [k.f], "o", color=style.F_COLOR, ms=ms, zorder=5)
        if k.jump:
            for v in {k.f_left, k.f_right} - {k.f}:  # a ring, large enough to show around f' dots
                ax.plot([k.x], [v], "o", mfc="white", mec=style.F_COLOR, ms=ms * 1.6, mew=1.5, zorder=4)
        for v in {k.left, k.right} - {k.derivative}:
            ax.plot([k.x], [v], "o", mfc="white", mec=style.DF_COLOR, ms=ms, zorder=5,
                    label="f' one-sided limit" if first and not compact else None)
            first = False
        ax.plot([k.x], [k.derivative], "o", color=style.DF_COLOR, ms=ms, zorder=6,
                label="f' at kink (convention)" if i == 0 and not compact else None)
    ax.axhline(0, color="black", lw=0.6, alpha=0.5)
    ax.axvline(0, color="black", lw=0.6, alpha=0.5)
    ax.set_xlim(c.lo, c.hi)
    if not compact:
        ax.set_xlabel("x" if c.spec.elementwise else "x (scalar input to the unit's k pieces)")
        ax.set_ylabel("value")
        ax.legend(loc="best")


def plot_activation(
    spec: ActivationSpec | str,
    params: Mapping[str, Any] | None = None,
    x_range: tuple[float, float] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """One figure of f and f' with formula, shaded saturation, kinks and explanatory notes.

    Args:
        spec: the activation or its name.
        params: hyperparameters (validated; learnable ones at their initial value). Default: defaults.
        x_range: ``(lo, hi)``; default :func:`default_range`.
        path: where to write the PNG (optional).

    Returns:
        The figure (not attached to pyplot).
    """
    from actlab.plot import style

    c = curves(spec, params, x_range)
    s = c.spec
    shown = {k: v for k, v in c.params.items() if k != "training"}
    head = s.title + (" (" + ", ".join(f"{k}={_num(v)}" for k, v in shown.items()) + ")" if shown else "")
    with style.style():
        fig = style.figure(7.2, 5.6 if c.notes else 4.9)
        if c.notes:
            ax, note_ax = fig.subplots(2, 1, height_ratios=[6, 0.2 + 0.3 * len(c.notes)])
        else:
            ax, note_ax = fig.subplots(1, 1), None
        draw(ax, c)
        ax.set_title(f"{head}\n{style.mathtext(s.formula)}\n{style.mathtext(s.derivative_formula)}",
                     fontsize=11, linespacing=1.6)
        if note_ax is not None:
            note_ax.axis("off")
            note_ax.text(0.0, 1.0, "\n".join(f"• {n}" for n in c.notes), va="top", ha="left",
                         fontsize=8.5, wrap=True, transform=note_ax.transAxes)
        if path is not None:
            style.save(fig, path)
    return fig


def plot_grid(
    spec_list: Sequence[ActivationSpec | str] | None = None,
    path: str | Path | None = None,
    cols: int = 6,
) -> Figure:
    """A grid of small panels, one per activation (default: the whole registry), f and f' each."""
    from actlab.plot import style

    items = [get(s) for s in (spec_list if spec_list is not None else specs())]
    rows = max(1, math.ceil(len(items) / cols))
    with style.style():
        fig = style.figure(2.35 * cols, 2.05 * rows + 0.5)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, s in zip(axes, items):
            draw(ax, curves(s), compact=True)
            ax.set_title(s.name, fontsize=10)
            ax.tick_params(labelsize=7)
        for ax in axes[len(items):]:
            ax.axis("off")
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [
            Line2D([], [], color=style.F_COLOR, lw=1.6, label="f(x)"),
            Line2D([], [], color=style.DF_COLOR, lw=1.6, ls="--", label="f'(x)"),
            Patch(color=style.SAT_COLOR, alpha=0.3, label=f"saturated (|f'| < {SATURATION_TOL:.0%} max)"),
            Line2D([], [], marker="o", color=style.DF_COLOR, ls="", label="f' at kink (convention)"),
            Line2D([], [], marker="o", mfc="white", mec=style.DF_COLOR, ls="", label="one-sided f'"),
            Line2D([], [], color=style.ACCENT, lw=1, ls=":", label="maxout pieces"),
        ]
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=9, frameon=False)
        if path is not None:
            style.save(fig, path)
    return fig


# ------------------------------------------------------------------ helpers
def _params(spec: ActivationSpec, params: Mapping[str, Any] | None) -> dict[str, Any]:
    given = {k: v for k, v in (params or {}).items() if k != "training"}
    p = dict(spec.resolve(**given))
    for hp in spec.params:  # learnable values may arrive as tensors; plot their first entry
        if isinstance(p[hp.name], torch.Tensor):
            p[hp.name] = float(p[hp.name].detach().flatten()[0])
    p["training"] = False
    return p


def _eval(spec: ActivationSpec, p: Mapping[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        y = spec.forward(t, p)
        d = spec.derivative(t, y, p)
    return y.numpy(), d.numpy()


def _max_df(spec: ActivationSpec, p: Mapping[str, Any], df: np.ndarray) -> float:
    finite = df[np.isfinite(df)]
    seen = float(np.abs(finite).max()) if finite.size else 0.0
    given = {k: v for k, v in p.items() if k != "training"}
    # At the defaults the spec caches its own value; anything else is measured afresh.
    sup = spec.max_abs_derivative if given == spec.defaults() else max_abs_derivative(spec, given)
    return max(seen, float(sup))


def _crossing(x: np.ndarray, a: np.ndarray, thr: float, i: int, j: int) -> float:
    """x where ``a`` crosses ``thr`` between grid points i and j (linear interpolation)."""
    if a[j] == a[i]:
        return float(x[i])
    t = float(np.clip((thr - a[i]) / (a[j] - a[i]), 0.0, 1.0))
    return float(x[i] + t * (x[j] - x[i]))


def _training_samples(
    spec: ActivationSpec, p: Mapping[str, Any], lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Training-mode values when they differ from eval mode (a random forward, as RReLU's)."""
    x = np.linspace(lo, hi, 241)
    pt = {**p, "training": True}
    with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
        torch.manual_seed(0)
        t = torch.as_tensor(x, dtype=torch.float64)
        with torch.no_grad():
            y = spec.forward(t, pt)
            d = spec.derivative(t, y, pt)
    f_eval = _eval(spec, p, x)[0]
    if np.allclose(y.numpy(), f_eval, equal_nan=True):
        return None
    return x, y.numpy(), d.numpy()


def _maxout_curves(spec: ActivationSpec, p: dict[str, Any], lo: float, hi: float, n: int) -> Curves:
    k = spec.group_size(p)
    w, b = maxout_pieces(k, lo, hi)
    x = np.linspace(lo, hi, n)

    def unit(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = torch.as_tensor(xs[:, None] * w + b, dtype=torch.float64)  # (n, k): one unit's k pieces
        return _unit(spec, p, z, w)

    win = unit(x)[2]
    marks = []
    for i in np.flatnonzero(np.diff(win)):
        a, c = win[i], win[i + 1]
        xk = float((b[a] - b[c]) / (w[c] - w[a]))
        z = xk * w + b
        z[c] = z[a]  # an exact tie, so the mark shows the spec's tie-breaking convention
        fk, dk, _ = _unit(spec, p, torch.as_tensor(z[None, :], dtype=torch.float64), w)
        marks.append(KinkMark(xk, float(fk[0]), float(fk[0]), float(fk[0]), float(dk[0]),
                              float(w[a]), float(w[c]), False))
    eps = 1e-9 * (hi - lo)
    for m in marks:  # sample each piece up to its ends, never across a switch
        x = x[np.abs(x - m.x) > 2 * eps]
    x = np.unique(np.concatenate([x, *([m.x - eps, m.x + eps] for m in marks)]))
    f, df, _ = unit(x)
    # Break f' between pieces so its steps are not drawn as slanted lines.
    x_df, df_b = x, df
    for m in sorted(marks, key=lambda m: -m.x):
        i = int(np.searchsorted(x, m.x))
        x_df, df_b = np.insert(x_df, i, m.x), np.insert(df_b, i, np.nan)
    c = Curves(spec, p, lo, hi, x, f, x_df, df_b, float(np.abs(w).max()), [], marks, pieces=(w, b))
    c.notes = _notes(spec, p, c)
    return c


def _unit(spec: ActivationSpec, p: Mapping[str, Any], z: torch.Tensor, w: np.ndarray):
    """f, d f / d x and the winning piece of one maxout unit whose k pieces are the columns of z."""
    with torch.no_grad():
        y = spec.forward(z, p)[:, 0]
        dz = spec.derivative(z, y[:, None], p)  # d f / d z_i: 1 for the winning piece
    dzn = dz.numpy()
    return y.numpy(), dzn @ w, dzn.argmax(1)


def _notes(spec: ActivationSpec, p: Mapping[str, Any], c: Curves) -> list[str]:
    """Lines that explain what the plot shows beyond f and f' (from the spec's declarations)."""
    notes = []
    if not spec.elementwise:
        k = spec.group_size(p)
        notes.append(
            f"Illustration: one maxout unit over k = {k} affine pieces z_i = w_i x + b_i of a scalar x "
            f"(dotted); f = max_i z_i, and f' = d f/dx is the slope of the winning piece. In a network, "
            f"Linear(n, m*k) then Maxout(pieces={k}) gives m units."
        )
        notes.append("At a tie the first maximal piece gets the gradient (filled dot).")
    if not spec.backprop:
        notes.append("f' = 0 almost everywhere: it cannot be trained by backpropagation.")
    for hp in spec.params:
        if hp.learnable:
            notes.append(f"{hp.name} is learnable; shown at its initial value {_num(p[hp.name])}.")
    if c.samples is not None:
        notes.append("Lines: eval mode. Dots: one draw of the random training-mode forward.")
    return notes


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
