"""The catalog as documents: a property sheet at any hyperparameters, and the Markdown page.

``docs/activations.md`` and ``docs/activations.png`` are generated from the registry; a test
fails when the page is out of date. Regenerate both with::

    actlab docs --out docs/activations.md
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence


from actlab._format import number
from actlab.activations import ActivationSpec, get, specs

DEFAULT_OUT = Path("docs/activations.md")


def summary(spec: ActivationSpec | str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``spec.summary(params)`` for a spec or a name (see :meth:`ActivationSpec.summary`)."""
    return get(spec).summary(params)


def markdown(spec_list: Sequence[ActivationSpec] | None = None, image: str | None = "activations.png") -> str:
    """The Markdown catalog page: one table row per activation, then each one's notes.

    Args:
        spec_list: activations to list; default: the whole registry, in catalog order.
        image: relative path of the grid figure to embed (``None``: no image).
    """
    items = list(spec_list) if spec_list is not None else specs()
    lines = [
        "# Activation catalog",
        "",
        "<!-- Generated from the registry by `actlab docs --out docs/activations.md`; do not edit by hand. -->",
        "",
        f"{len(items)} nonlinearities, each declared once in `src/actlab/activations/catalog.py`. "
        "E f and E f^2 are taken over z ~ N(0, 1); max |f'| and the moments are at the default "
        "hyperparameters. `actlab show NAME` plots one of them; `actlab list` prints this table in "
        "the terminal.",
        "",
    ]
    if image:
        lines += [f"![f (solid) and f' (dashed) of every activation; shaded: saturated]({image})", ""]
    lines += [
        "| Name | Formula | Range | E f, E f^2 | Properties | Hyperparameters | Reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in items:
        name = f"`{s.name}`" + (f"<br>({', '.join(s.aliases)})" if s.aliases else "")
        hps = "<br>".join(
            f"`{hp.name}`={_fmt(hp.default)} in {hp.range_text()}" + (" (learnable)" if hp.learnable else "")
            for hp in s.params
        ) or "-"
        m = s.moments
        cells = [name, f"${s.formula}$", s.range_text(), f"{_fmt(m.mean)}, {_fmt(m.second)}",
                 ", ".join(properties(s)), hps, s.reference]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Notes", ""]
    for s in items:
        lines.append(f"- **{s.title}** (`{s.name}`): {s.note}")
    return "\n".join(lines) + "\n"


def properties(spec: ActivationSpec) -> list[str]:
    """Short property phrases for tables (``"monotone"``, ``"kinks at 0"``, ...), at default params."""
    p = spec.defaults()
    kinks = spec.kinks(p)
    out = ["zero-centred" if spec.zero_centred else "not zero-centred",
           "monotone" if spec.monotone else "non-monotone"]
    if not spec.elementwise:
        out.append("piecewise linear (k pieces)")
    elif kinks:
        out.append(("jump at " if any(k.jump for k in kinks) else "kinks at ") + ", ".join(_fmt(k.x) for k in kinks))
    else:
        out.append("smooth")
    out.append("no saturation" if spec.saturates == "none" else f"saturates {spec.saturates}")
    if spec.can_die:
        out.append("can die")
    out.append(f"max |f'| = {_fmt(spec.max_abs_derivative)}")
    out.append(f"cost: {spec.cost}")
    if not spec.backprop:
        out.append("**no backprop**")
    if spec.learnable:
        out.append("learnable " + ", ".join(spec.learnable))
    out.append("torch built-in" if spec.builtin is not None else "no torch built-in")
    return out


def write(out: str | Path = DEFAULT_OUT, image: bool = True) -> list[Path]:
    """Write the Markdown page to ``out`` and (``image``) the grid figure beside it; return the paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    out.write_text(markdown(image=png.name if image else None), encoding="utf-8")
    written = [out]
    if image:
        from actlab.plot.activations import plot_grid

        plot_grid(path=png)
        written.append(png)
    return written


_SYMBOLS = {
    "alpha": "α", "beta": "β", "lambda": "λ", "pi": "π", "Phi": "Φ", "varphi": "φ", "phi": "φ",
    "sigma": "σ", "partial": "∂", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠",
    "in": "∈", "sim": "~", "approx": "≈", "int": "∫", "cdot": "·", "infty": "∞", "mid": "|",
}


def plain_formula(latex: str) -> str:
    """A LaTeX formula as readable Unicode text for terminals (``\\frac{1}{1 + e^{-x}}`` -> ``1/(1 + e^(-x))``)."""
    s = re.sub(r"\\(" + "|".join(_SYMBOLS) + r")(?![A-Za-z])", lambda m: _SYMBOLS[m[1]], latex)
    s = re.sub(r"\\[td]?frac\s*(\w)\s*(\w)", r"\1/\2", s)  # \tfrac14
    s = re.sub(r"\\sqrt\s*([^{\s])", r"√\1", s)
    for _ in range(4):  # innermost braces first, so nested fractions and roots come out right
        s = re.sub(r"\\(?:text|operatorname|mathrm)\{([^{}]*)\}", r"\1", s)
        s = re.sub(r"\\[td]?frac\{([^{}]*)\}\{([^{}]*)\}", lambda m: f"{_group(m[1])}/{_group(m[2])}", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", lambda m: "√" + _group(m[1]), s)
        s = re.sub(r"([\^_])\{([^{}]*)\}", lambda m: m[1] + _group(m[2]), s)
    s = re.sub(r"\\(left|right)\s*", "", s)
    s = re.sub(r"\s*\\q?quad(?![A-Za-z])\s*", "\0", s)  # a wide gap, kept through the squeeze below
    s = re.sub(r"\\[,;: ]", " ", s)
    s = s.replace("\\{", "{").replace("\\}", "}").replace("\\_", "_")
    s = re.sub(r"\\([A-Za-z]+)", r"\1", s)
    return re.sub(r" {2,}", " ", s).replace("\0", "   ").strip()


def _group(t: str) -> str:
    t = t.strip()
    return t if re.fullmatch(r"[\w.√α-ωΦ]+", t) else f"({t})"


def _fmt(v: float) -> str:
    if isinstance(v, float) and abs(v) < 1e-9:
        return "0"
    return number(v, 4) if abs(v) >= 1e-4 else number(v, 3)


def _cell(text: str) -> str:
    # A bare "|" ends a Markdown table cell (|x| in softsign's formula); escape the ones not escaped.
    return text.replace("\\|", "\0").replace("|", "\\|").replace("\0", "\\|").replace("\n", " ")
