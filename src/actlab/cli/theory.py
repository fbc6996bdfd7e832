"""``actlab theory``: mean-field predictions, gains, phase diagrams, born-dead probabilities.

Sub-commands: ``analyse NAME`` (the default: ``actlab theory tanh`` = ``actlab theory analyse
tanh``), ``gains``, ``phase NAME --out FILE.png``, ``born-dead NAME``, ``measure NAME``.  The
older mode flags (``--gains``, ``--phase-diagram``, ``--born-dead``, ``--measure``) still work.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from actlab._format import number
from actlab.cli.app import app, check_output, console, default_group, fail, note, print_json
from actlab.cli.catalog import _parse_params, _spec

theory_app = typer.Typer(
    cls=default_group("analyse", {"--gains": "gains", "--phase-diagram": "phase", "--born-dead": "born-dead",
                                  "--measure": "measure"}),
    no_args_is_help=True,
    help="Predict how signals and gradients scale with depth (mean-field theory). "
         "`actlab theory NAME` = `actlab theory analyse NAME`.",
)
app.add_typer(theory_app, name="theory")

Name = Annotated[str, typer.Argument(help="Activation name (see `actlab list`).")]
SigmaW2 = Annotated[float, typer.Option("--sigma-w2", help="Weight variance x fan-in (1: LeCun, 2: He).")]
SigmaB2 = Annotated[float, typer.Option("--sigma-b2", help="Bias variance.")]
Depth = Annotated[int, typer.Option("--depth", help="Layers.")]
Param = Annotated[list[str] | None, typer.Option("--param", "-p", help="Hyperparameter KEY=VALUE.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]
MAX_DEPTH = 100_000
MAX_WIDTH = 100_000


def _check(sigma_w2: float, sigma_b2: float, depth: int, width: int | None = None) -> None:
    """Range checks shared by the sub-commands, before any work (one line, exit 2)."""
    if not (math.isfinite(sigma_w2) and sigma_w2 > 0):
        raise fail(f"--sigma-w2 must be a finite number > 0, got {sigma_w2}")
    if not (math.isfinite(sigma_b2) and sigma_b2 >= 0):
        raise fail(f"--sigma-b2 must be a finite number >= 0, got {sigma_b2}")
    if not 1 <= depth <= MAX_DEPTH:
        raise fail(f"--depth must be in [1, {MAX_DEPTH}], got {depth}")
    if width is not None and not 1 <= width <= MAX_WIDTH:
        raise fail(f"--width must be in [1, {MAX_WIDTH}], got {width}")


def _notes(notes: list[str]) -> None:
    for n in notes:
        note(n)


@theory_app.command("analyse")
def analyse_cmd(
    name: Name,
    sigma_w2: SigmaW2 = 1.0,
    sigma_b2: SigmaB2 = 0.0,
    depth: Annotated[int, typer.Option("--depth", help="Layers for the gradient ratio.")] = 20,
    param: Param = None,
    json_: Json = False,
) -> None:
    """q*, chi_1, depth scales, phase, critical sigma_w^2 and gain of NAME at (sigma_w^2, sigma_b^2).

    Example: `actlab theory tanh --sigma-w2 1.5 --sigma-b2 0.05`.
    """
    from actlab.theory import analyse

    _check(sigma_w2, sigma_b2, depth)
    spec = _spec(name)
    params = _parse_params(spec, param or [])
    mf = analyse(spec.name, sigma_w2, sigma_b2, depth, **params)
    if json_:
        print_json(mf.to_dict())
        _notes(mf.notes)
        return
    t = Table(title=f"{spec.name}: mean field at sigma_w^2 = {sigma_w2:g}, sigma_b^2 = {sigma_b2:g}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    rows = [
        ("q* (fixed-point pre-activation variance)", number(mf.q_star, 6)),
        ("chi_1 (gradient norm^2 gain per layer at q*)", number(mf.chi_1, 6)),
        ("phase", mf.phase),
        ("c* (fixed-point correlation)", number(mf.c_star, 6)),
        ("xi_q (depth scale of the variance)", number(mf.xi_q)),
        ("xi_c (depth scale of the correlation)", number(mf.xi_c)),
        (f"critical sigma_w^2 at sigma_b^2 = {sigma_b2:g}", number(mf.critical_sigma_w2, 6)),
        ("gain (forward variance, 1/sqrt(E f(z)^2))", number(mf.gain, 6)),
        (f"gradient norm ratio layer 1 / layer {depth} (chi_1^(L/2))", number(mf.grad_ratio)),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    _notes(mf.notes)


@theory_app.command("gains")
def gains_cmd(json_: Json = False) -> None:
    """Gain table: weight std = gain / sqrt(fan_in), against torch.nn.init.calculate_gain."""
    from actlab.theory import gain_table

    rows = gain_table()
    if json_:
        print_json(rows)
        return
    t = Table(title="Gains: weight std = gain / sqrt(fan_in)")
    for c in ("activation", "forward gain", "backward gain", "critical gain", "torch", "note"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["activation"], number(r["gain"], 5), number(r["backward_gain"], 5), number(r["critical_gain"], 5),
                  number(r["torch_gain"], 5), escape(r["note"]))
    console.print(t)
    console.print(escape("forward: keeps E[u^2] = 1 layer to layer; backward: keeps the gradient norm at q = 1; "
                         "critical: chi_1 = 1 at sigma_b^2 = 0 (the edge of chaos; '-' where chi_1 jumps over 1 "
                         "instead)."))
    for r in rows:
        if r["torch_gain"] is not None and r["note"] != "same (exact)":
            console.print(f"[bold]{r['activation']}[/]: {escape(r['why'])}")


@theory_app.command("born-dead")
def born_dead_cmd(
    name: Name,
    depth: Depth = 20,
    width: Annotated[int, typer.Option("--width", help="Units per layer.")] = 3,
    init: Annotated[str, typer.Option("--init", help="Weight init scheme.")] = "he_normal",
    sigma_w2: Annotated[float, typer.Option("--sigma-w2", help="Weight variance x fan-in (--init normal/uniform).")] = 1.0,
    sigma_b2: SigmaB2 = 0.0,
    trials: Annotated[int, typer.Option("--trials", help="Monte Carlo networks.")] = 10_000,
    table: Annotated[bool, typer.Option("--table", help="The depth x width table.")] = False,
    param: Param = None,
    json_: Json = False,
) -> None:
    """Probability that an MLP of NAME is dead at initialisation (Monte Carlo, Wilson interval).

    Example: `actlab theory born-dead relu --depth 10 --width 3`.
    """
    from actlab.theory.dying import born_dead, born_dead_table

    _check(sigma_w2, sigma_b2, depth, width)
    spec = _spec(name)
    params = _parse_params(spec, param or [])
    if not 1 <= trials <= 10_000_000:
        raise fail(f"--trials must be in [1, 10000000], got {trials}")
    kw = dict(init=init, sigma_b2=sigma_b2, **params)
    if init in ("normal", "uniform"):
        kw["sigma_w2"] = sigma_w2
    if table:
        res = born_dead_table(spec.name, trials=min(trials, 2000), **kw)
        if json_:
            print_json([r.to_dict() for r in res])
            return
        depths = list(dict.fromkeys(r.depth for r in res))
        widths = list(dict.fromkeys(r.width for r in res))
        t = Table(title=f"P({spec.name} MLP born dead), init {init}, sigma_b^2 = {sigma_b2:g}, "
                        f"{res[0].trials} nets per cell")
        t.add_column("depth \\ width")
        for w in widths:
            t.add_column(str(w), justify="right")
        for d in depths:
            t.add_row(str(d), *[f"{r.probability:.3f}" for r in res if r.depth == d])
        console.print(t)
        return
    r = born_dead(spec.name, depth, width, trials=trials, **kw)
    if json_:
        print_json(r.to_dict())
        return
    console.print(
        f"P({spec.name} MLP of depth {depth}, width {width} is born dead) = [bold]{r.probability:.4f}[/] "
        f"({100 * r.level:g}% Wilson CI \\[{r.ci_low:.4f}, {r.ci_high:.4f}]; {r.dead}/{r.trials} nets, init "
        f"{escape(init)}, sigma_b^2 = {sigma_b2:g}, {r.inputs} probe inputs on \\[-1, 1]^{r.d_in})")


@theory_app.command("phase")
def phase_cmd(
    name: Name,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")],
    grid: Annotated[int, typer.Option("--grid", help="Grid points per axis.")] = 48,
    param: Param = None,
) -> None:
    """Phase diagram of NAME over (sigma_w^2, sigma_b^2): ordered, chaotic, and the edge of chaos.

    Example: `actlab theory phase tanh --out phase.png`.
    """
    check_output(out, option="--out", suffixes=(".png",))
    if not 4 <= grid <= 512:
        raise fail(f"--grid must be in [4, 512], got {grid}")
    spec = _spec(name)
    params = _parse_params(spec, param or [])
    from actlab.theory.plots import phase_diagram

    phase_diagram(spec.name, n=grid, out=out, **params)
    console.print(f"wrote {out}", markup=False, highlight=False)


@theory_app.command("measure")
def measure_cmd(
    name: Name,
    sigma_w2: SigmaW2 = 1.0,
    sigma_b2: SigmaB2 = 0.0,
    depth: Depth = 20,
    width: Annotated[int, typer.Option("--width", help="Units per layer.")] = 1000,
    seeds: Annotated[int, typer.Option("--seeds", help="Networks averaged.")] = 5,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="PNG of theory vs measurement.")] = None,
    param: Param = None,
    json_: Json = False,
) -> None:
    """Measure the gradient norms of an MLP of NAME at init and hold them against the theory.

    Example: `actlab theory measure relu --sigma-w2 2 --width 500 --out relu.png`.
    """
    check_output(out, option="--out", suffixes=(".png",))
    _check(sigma_w2, sigma_b2, depth, width)
    if depth > 1000 or width < 2 or width > 10_000:
        raise fail(f"measure needs --depth in [1, 1000] and --width in [2, 10000], got {depth} and {width}")
    if not 1 <= seeds <= 1000:
        raise fail(f"--seeds must be in [1, 1000], got {seeds}")
    spec = _spec(name)
    params = _parse_params(spec, param or [])
    from actlab.lab.compare import compare

    c = compare(spec.name, sigma_w2, sigma_b2, depth=depth, width=width, seeds=seeds, threads=1, **params)
    if out is not None:
        from actlab.lab.compare import gradient_figure

        gradient_figure([c], out=out)
    if json_:
        print_json(c.to_dict())
        return
    t = Table(title=f"{spec.name}: RMS ||dL/du^l|| at init, width {width}, {seeds} seeds")
    for col in ("layer", "theory", "measured", "measured / theory"):
        t.add_column(col, justify="right")
    for i in range(depth):
        t.add_row(str(i + 1), number(c.predicted[i]), number(c.measured[i]), number(c.ratio[i], 3))
    console.print(t)
    console.print(f"max deviation {100 * c.max_deviation:.1f}%" + (f"; wrote {out}" if out else ""),
                  markup=False, highlight=False)


