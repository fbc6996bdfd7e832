"""The house style for actlab figures: one look, one save path, Agg only.

Figures are built on :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so
plotting keeps no global state, needs no display and is safe to call from tests, CLI
commands and worker processes alike.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import matplotlib
from matplotlib.figure import Figure
from matplotlib.mathtext import MathTextParser

# Colours (colour-blind safe, Okabe-Ito) shared by every actlab plot.
F_COLOR = "#0072B2"  # the function
DF_COLOR = "#D55E00"  # its derivative
SAT_COLOR = "#999999"  # shaded saturating regions
ACCENT = "#009E73"  # a third series (pieces, samples)

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "#cccccc",
    "lines.linewidth": 2.0,
    "savefig.dpi": 130,
    "mathtext.fontset": "dejavusans",
}


@contextmanager
def style() -> Iterator[None]:
    """Context in which figures get actlab's rc settings."""
    with matplotlib.rc_context(RC):
        yield


def figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A new, unattached figure (size in inches) with a constrained layout (so no tight bbox at save)."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: str | Path, dpi: float | None = None) -> Path:
    """Write ``fig`` as PNG to ``path`` (parent folders are created, the file replaced atomically)
    and return the path."""
    import io

    from actlab._io import write_atomic

    buf = io.BytesIO()
    # No software/date metadata, so regenerating an unchanged figure gives the same bytes.
    fig.savefig(buf, format="png", metadata={"Software": None}, **({"dpi": dpi} if dpi else {}))
    return write_atomic(path, buf.getvalue())


_TFRAC_SHORT = re.compile(r"\\tfrac\s*(\w)\s*(\w)")
_SUBS = (
    (re.compile(r"\\tfrac\b"), r"\\frac"),
    (re.compile(r"\\dfrac\b"), r"\\frac"),
    (re.compile(r"\\ge\b"), r"\\geq"),
    (re.compile(r"\\le\b"), r"\\leq"),
    (re.compile(r"\\ne\b"), r"\\neq"),
    (re.compile(r"\\sqrt\s*\\(\w+)"), r"\\sqrt{\\\1}"),
)


def mathtext(latex: str) -> str:
    """``latex`` as matplotlib mathtext (``$...$``), or plain text when mathtext cannot parse it.

    Mathtext is a subset of LaTeX: ``\\tfrac``, ``\\le``, ``\\ge`` and ``\\sqrt\\pi`` are
    rewritten into forms it knows.
    """
    s = _TFRAC_SHORT.sub(r"\\frac{\1}{\2}", latex)
    for pat, rep in _SUBS:
        s = pat.sub(rep, s)
    s = f"${s}$"
    return s if renders(s) else latex.replace("$", r"\$")


def renders(text: str) -> bool:
    """Whether matplotlib's mathtext can lay out ``text`` (a ``$...$`` string)."""
    try:
        _PARSER.parse(text)
    except ValueError:  # mathtext reports every parse failure as a ValueError
        return False
    return True


_PARSER = MathTextParser("path")
