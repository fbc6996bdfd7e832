"""``actlab list``, ``actlab show``, ``actlab plot-all`` and ``actlab docs``: the catalog on the command line.

Every row, choice and panel comes from the registry; nothing here names an activation.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from actlab._format import number
from actlab.cli.app import app, check_output, console, err_console, fail, print_json, table_console

if TYPE_CHECKING:  # pragma: no cover
    from actlab.activations import ActivationSpec


def _yes(v: bool) -> str:
    return "yes" if v else "-"


def _num(v: Any) -> str:
    return number(v, 4)


def _kinks_text(d: dict[str, Any]) -> str:
    if not d["elementwise"]:
        return "piecewise linear"
    if d["smooth"]:
        return "smooth"
    xs = ", ".join(_num(k["x"]) for k in d["kinks"])
    return ("jump " if any(k["jump"] for k in d["kinks"]) else "kink ") + xs


@app.command("list")
def list_(
    json_: Annotated[bool, typer.Option("--json", help="Print spec.summary() of every activation as a JSON list.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column (default: fit 80 columns).")] = False,
) -> None:
    """Table of every activation in the catalog and its main properties."""
    from actlab.activations import specs

    summaries = [s.summary() for s in specs()]
    if json_:
        print_json(summaries)
        return
    out = table_console(wide)
    wide = out.width >= 130
    table = Table(title=f"actlab activation catalog ({len(summaries)})", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  caption="range: output range; 0-ctr: E f(z) = 0 for z ~ N(0,1); max|f'|: sup |f'|; "
                  "torch: torch has it built in. `actlab show NAME` gives the full sheet and a plot.")
    table.add_column("name", style="bold cyan", no_wrap=True)
    if wide:
        table.add_column("aliases", style="dim")
    table.add_column("range", min_width=8)
    if wide:
        for header in ("0-ctr", "mono"):
            table.add_column(header, no_wrap=True)
    else:  # narrow terminals: the yes/no properties share one wrapping column
        table.add_column("properties", min_width=12)
    table.add_column("kinks", min_width=6)
    if wide:
        table.add_column("saturates", no_wrap=True)
        table.add_column("dies", no_wrap=True)
    table.add_column("max|f'|", justify="right", min_width=6)
    table.add_column("cost", min_width=5)
    if wide:
        table.add_column("backprop", no_wrap=True)
    table.add_column("torch", min_width=5)
    for d in summaries:
        lo, hi = d["output_range"]
        sat = d["saturates"] if d["saturates"] != "none" else "-"
        dies = "[red]yes[/]" if d["can_die"] else "-"
        backprop = "yes" if d["backprop"] else "[bold red]no[/]"
        if wide:
            flags = [_yes(d["zero_centred"]), _yes(d["monotone"])]
        else:
            tags = [t for t, on in (("0-ctr", d["zero_centred"]), ("mono", d["monotone"]),
                                    (f"sat {sat}", sat != "-"), ("[red]dies[/]", d["can_die"]),
                                    ("[bold red]no backprop[/]", not d["backprop"])) if on]
            flags = [", ".join(tags) or "-"]
        table.add_row(
            d["name"],
            *([", ".join(d["aliases"])] if wide else []),
            f"({_num(lo)}, {_num(hi)})",
            *flags,
            _kinks_text(d),
            *([sat, dies] if wide else []),
            _num(d["max_abs_derivative"]),
            d["cost"].replace("+", ", "),
            *([backprop] if wide else []),
            _yes(d["torch_builtin"]),
        )
    out.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Activation name or alias (see `actlab list`).")],
    param: Annotated[
        Optional[list[str]],
        typer.Option("--param", "-p", help="Hyperparameter as KEY=VALUE; repeat for several."),
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the plot of f and f' to this PNG.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the property sheet (at the given params) as JSON.")] = False,
    x_range: Annotated[
        Optional[tuple[float, float]],
        typer.Option("--range", help="Plot range LO HI (default: [-5, 5], widened to show every kink)."),
    ] = None,
) -> None:
    """Property sheet of one activation, and with --out a plot of f and f' (saturation shaded, kinks marked)."""
    check_output(out, option="--out", suffixes=(".png",))
    spec = _spec(name)
    params = _parse_params(spec, param or [])
    if x_range is not None:
        lo, hi = x_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise fail(f"--range needs finite LO < HI, got {_num(lo)} {_num(hi)}")
    from actlab.docs import summary

    sheet = summary(spec, params)
    if json_:
        print_json(sheet)
    else:
        _print_sheet(sheet)
    if out is not None:
        from actlab.plot.activations import plot_activation

        _agg()
        try:
            plot_activation(spec, params, x_range, path=out)
        except OSError as e:
            raise fail(f"cannot write {str(out)!r}: {e.strerror or e}") from None
        # In --json mode stdout carries only JSON, so the notice goes to stderr.
        (err_console if json_ else console).print(f"wrote plot to {out}", soft_wrap=True, markup=False,
                                                  highlight=False)


@app.command("plot-all")
def plot_all(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write activations.png into.")] = Path("."),
    cols: Annotated[int, typer.Option(min=1, max=24, help="Panels per row.")] = 6,
) -> None:
    """Grid figure of every activation and its derivative (one panel each), as used in the docs."""
    check_output(out, kind="dir", option="--out")
    from actlab.activations import specs
    from actlab.plot.activations import plot_grid

    _agg()
    path = out / "activations.png"
    try:
        plot_grid(path=path, cols=cols)
    except OSError as e:
        raise fail(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    console.print(f"wrote {len(specs())} panels to {path}", soft_wrap=True, markup=False, highlight=False)


@app.command("docs")
def docs(
    out: Annotated[Path, typer.Option("--out", "-o", help="Markdown file to write.")] = Path("docs/activations.md"),
    image: Annotated[bool, typer.Option("--image/--no-image", help="Also write the grid PNG beside it.")] = True,
) -> None:
    """Write the catalog page (Markdown table from the registry) and its grid figure."""
    check_output(out, option="--out", suffixes=(".md",))
    from actlab import docs as docs_mod

    _agg()
    try:
        written = docs_mod.write(out, image=image)
    except OSError as e:
        raise fail(f"cannot write {str(out)!r}: {e.strerror or e}") from None
    for p in written:
        console.print(f"wrote {p}", soft_wrap=True, markup=False, highlight=False)


# ------------------------------------------------------------------ helpers
def _agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def _spec(name: str) -> ActivationSpec:
    from actlab.activations import ActivationError, get

    try:
        return get(name)
    except ActivationError as e:
        raise fail(str(e)) from None


def _parse_params(spec: ActivationSpec, items: list[str]) -> dict[str, Any]:
    """``["alpha=0.5"]`` -> ``{"alpha": 0.5}``, validated against ``spec``; errors exit with code 2."""
    from actlab._kv import PairError, parse_pairs
    from actlab.activations import ActivationError

    valid = ", ".join(f"{hp.name} in {hp.range_text()}" for hp in spec.params)
    valid_text = f"valid: {valid}" if valid else f"{spec.name} has no hyperparameters"
    try:
        raw = parse_pairs(items, option="--param", hint=valid_text)
    except PairError as e:
        raise fail(str(e)) from None
    known = {hp.name: hp for hp in spec.params}
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise fail(f"{spec.name} has no hyperparameter {key!r}.{hint} "
                       + (f"Valid: {valid}" if valid else "It takes no hyperparameters."))
    values: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise fail(f"--param {key}={value}: {key} must be a finite number in {known[key].range_text()}")
        values[key] = int(v) if v.is_integer() else v  # "2" stays 2 in messages and for integer params
    try:
        resolved = spec.resolve(**values)
    except ActivationError as e:
        raise fail(str(e)) from None
    return {k: resolved[k] for k in values}


def _print_sheet(d: dict[str, Any]) -> None:
    from actlab.docs import plain_formula

    t = Table(box=box.ROUNDED, show_header=False, title=f"[bold]{escape(d['title'])}[/] ({d['name']})",
              title_justify="left")
    t.add_column("property", style="bold cyan", no_wrap=True)
    t.add_column("value", overflow="fold")
    row = lambda k, v: t.add_row(k, v)  # noqa: E731
    if d["aliases"]:
        row("aliases", ", ".join(d["aliases"]))
    row("formula", escape(plain_formula(d["formula"])))
    row("derivative", escape(plain_formula(d["derivative_formula"]))
        + f"  [dim](backward keeps the {d['derivative_from'].replace('both', 'input and output')})[/]")
    for hp in d["params"]:
        learn = " [yellow]learnable[/], initial value" if hp["learnable"] else ""
        row(f"param {hp['name']}", f"{_num(hp['value'])}{learn}  [dim]range {escape(hp['range'])}, "
            f"default {_num(hp['default'])}; {escape(hp['doc'])}[/]")
    lo, hi = d["output_range"]
    row("output range", f"({_num(lo)}, {_num(hi)})")
    row("zero-centred", f"{_yes(d['zero_centred'])}  [dim]E f(z) = {_num(d['mean_std_normal'])}, "
        f"E f(z)^2 = {_num(d['second_moment_std_normal'])}, z ~ N(0, 1)[/]")
    row("monotone", _yes(d["monotone"]))
    if d["kinks"]:
        ks = "; ".join(
            f"{'jump' if k['jump'] else 'kink'} at x = {_num(k['x'])}: f' := {_num(k['derivative'])} "
            f"(left {_num(k['left'])}, right {_num(k['right'])})" for k in d["kinks"])
        row("smooth", f"no: {ks}")
    else:
        row("smooth", "yes" if d["elementwise"] else "no: piecewise linear, kinks where the maximal piece changes")
    row("saturates", d["saturates"])
    row("can die", "[red]yes[/]" if d["can_die"] else "-")
    row("max |f'|", _num(d["max_abs_derivative"]))
    row("cost", d["cost"])
    row("backprop", "yes" if d["backprop"] else "[bold red]no: f' = 0 almost everywhere[/]")
    if not d["elementwise"]:
        row("elementwise", "no: the last dimension shrinks by the number of pieces")
    row("torch built-in", _yes(d["torch_builtin"]))
    row("note", escape(d["note"]))
    row("reference", escape(d["reference"]))
    console.print(t)
