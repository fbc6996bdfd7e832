"""``actlab theory``: mean-field predictions, gains, phase diagrams, born-dead probabilities."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from actlab.cli.app import app, console, fail
from actlab.cli.catalog import _dumps, _parse_params, _spec


def _num(v: Any, digits: int = 6) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return str(v)


@app.command("theory")
def theory(
    name: Annotated[str | None, typer.Argument(help="Activation name (see `actlab list`).")] = None,
    sigma_w2: Annotated[float, typer.Option("--sigma-w2", help="Weight variance x fan-in (1: LeCun, 2: He).")] = 1.0,
    sigma_b2: Annotated[float, typer.Option("--sigma-b2", help="Bias variance.")] = 0.0,
    depth: Annotated[int, typer.Option("--depth", help="Layers (gradient ratio; born-dead depth).")] = 20,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Hyperparameter KEY=VALUE.")] = None,
    gains: Annotated[bool, typer.Option("--gains", help="Gain table vs torch.nn.init.calculate_gain.")] = False,
    phase_diagram: Annotated[bool, typer.Option("--phase-diagram", help="Plot the phase diagram to --out.")] = False,
    born_dead: Annotated[bool, typer.Option("--born-dead", help="Probability the net is dead at init.")] = False,
    table: Annotated[bool, typer.Option("--table", help="With --born-dead: the depth x width table.")] = False,
    width: Annotated[int | None, typer.Option(
        "--width", help="Units per layer (--born-dead: default 3; --measure: default 1000).")] = None,
    init: Annotated[str, typer.Option("--init", help="With --born-dead: weight init scheme.")] = "he_normal",
    trials: Annotated[int, typer.Option("--trials", help="With --born-dead: Monte Carlo networks.")] = 10_000,
    measure: Annotated[bool, typer.Option("--measure", help="Measure gradient norms of an MLP vs theory.")] = False,
    seeds: Annotated[int, typer.Option("--seeds", help="With --measure: networks averaged.")] = 5,
    out: Annotated[Path | None, typer.Option("--out", help="PNG path for --phase-diagram / --measure.")] = None,
    grid: Annotated[int, typer.Option("--grid", help="With --phase-diagram: grid points per axis.")] = 48,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict how signals and gradients scale with depth (mean-field theory).

    Examples: `actlab theory tanh --sigma-w2 1.5 --sigma-b2 0.05`, `actlab theory --gains`,
    `actlab theory tanh --phase-diagram --out phase.png`, `actlab theory relu --born-dead --depth 10
    --width 3`, `actlab theory relu --measure --sigma-w2 2 --width 500 --out relu.png`.
    """
    from actlab.activations import ActivationError
    from actlab.theory import TheoryError

    if gains:
        return _gains(json_)
    if name is None:
        raise fail("give an activation NAME (or --gains); see `actlab list` for the names")
    spec = _spec(name)
    params = _parse_params(spec, param or [])
    if depth < 1:
        raise fail(f"--depth must be >= 1, got {depth}")
    try:
        if width is not None and width < 1:
            raise fail(f"--width must be >= 1, got {width}")
        if born_dead:
            return _born_dead(spec.name, depth, width or 3, init, sigma_w2, sigma_b2, trials, table, json_, params)
        if phase_diagram:
            if out is None:
                raise fail("--phase-diagram needs --out FILE.png")
            if grid < 4:
                raise fail(f"--grid must be >= 4, got {grid}")
            return _phase(spec.name, out, grid, params)
        if measure:
            return _measure(spec.name, sigma_w2, sigma_b2, depth, width or 1000, seeds, out, json_, params)
        return _analyse(spec.name, sigma_w2, sigma_b2, depth, json_, params)
    except (TheoryError, ActivationError) as e:
        raise fail(escape(str(e))) from None


def _analyse(name: str, sw: float, sb: float, depth: int, as_json: bool, params: dict) -> None:
    from actlab.theory import analyse

    mf = analyse(name, sw, sb, depth, **params)
    if as_json:
        console.print_json(_dumps(mf.to_dict()))
        return
    t = Table(title=f"{name}: mean field at sigma_w^2 = {sw:g}, sigma_b^2 = {sb:g}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    rows = [
        ("q* (fixed-point pre-activation variance)", _num(mf.q_star)),
        ("chi_1 (gradient norm^2 gain per layer at q*)", _num(mf.chi_1)),
        ("phase", mf.phase),
        ("c* (fixed-point correlation)", _num(mf.c_star)),
        ("xi_q (depth scale of the variance)", _num(mf.xi_q, 4)),
        ("xi_c (depth scale of the correlation)", _num(mf.xi_c, 4)),
        (f"critical sigma_w^2 at sigma_b^2 = {sb:g}", _num(mf.critical_sigma_w2)),
        ("gain (forward variance, 1/sqrt(E f(z)^2))", _num(mf.gain)),
        (f"gradient norm ratio layer 1 / layer {depth} (chi_1^(L/2))", _num(mf.grad_ratio, 4)),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    for n in mf.notes:
        console.print(f"[yellow]note:[/] {escape(n)}")


def _gains(as_json: bool) -> None:
    from actlab.theory import gain_table

    rows = gain_table()
    if as_json:
        console.print_json(_dumps(rows))
        return
    t = Table(title="Gains: weight std = gain / sqrt(fan_in)")
    for c in ("activation", "forward gain", "backward gain", "critical gain", "torch", "note"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["activation"], _num(r["gain"], 5), _num(r["backward_gain"], 5), _num(r["critical_gain"], 5),
                  _num(r["torch_gain"], 5), escape(r["note"]))
    console.print(t)
    console.print(escape("forward: keeps E[u^2] = 1 layer to layer; backward: keeps the gradient norm at q = 1; "
                         "critical: chi_1 = 1 at sigma_b^2 = 0 (the edge of chaos; '-' where chi_1 jumps over 1 "
                         "instead)."))
    for r in rows:
        if r["torch_gain"] is not None and r["note"] != "same (exact)":
            console.print(f"[bold]{r['activation']}[/]: {escape(r['why'])}")


def _born_dead(name: str, depth: int, width: int, init: str, sw: float, sb: float, trials: int, table: bool,
               as_json: bool, params: dict) -> None:
    from actlab.theory.dying import born_dead, born_dead_table

    kw = dict(init=init, sigma_b2=sb, **params)
    if init in ("normal", "uniform"):
        kw["sigma_w2"] = sw
    if table:
        res = born_dead_table(name, trials=min(trials, 2000), **kw)
        if as_json:
            console.print_json(_dumps([r.to_dict() for r in res]))
            return
        depths = list(dict.fromkeys(r.depth for r in res))
        widths = list(dict.fromkeys(r.width for r in res))
        t = Table(title=f"P({name} MLP born dead), init {init}, sigma_b^2 = {sb:g}, {res[0].trials} nets per cell")
        t.add_column("depth \\ width")
        for w in widths:
            t.add_column(str(w), justify="right")
        for d in depths:
            t.add_row(str(d), *[f"{r.probability:.3f}" for r in res if r.depth == d])
        console.print(t)
        return
    r = born_dead(name, depth, width, trials=trials, **kw)
    if as_json:
        console.print_json(_dumps(r.to_dict()))
        return
    console.print(
        f"P({name} MLP of depth {depth}, width {width} is born dead) = [bold]{r.probability:.4f}[/] "
        f"({100 * r.level:g}% Wilson CI [{r.ci_low:.4f}, {r.ci_high:.4f}]; {r.dead}/{r.trials} nets, init {init}, "
        f"sigma_b^2 = {sb:g}, {r.inputs} probe inputs on [-1, 1]^{r.d_in})")


def _phase(name: str, out: Path, grid: int, params: dict) -> None:
    from actlab.theory.plots import phase_diagram

    phase_diagram(name, n=grid, out=out, **params)
    console.print(f"wrote {out}")


def _measure(name: str, sw: float, sb: float, depth: int, width: int, seeds: int, out: Path | None,
             as_json: bool, params: dict) -> None:
    from actlab.lab.compare import compare

    if width < 2:
        raise fail(f"--width must be >= 2 for --measure, got {width}")
    c = compare(name, sw, sb, depth=depth, width=width, seeds=seeds, threads=1, **params)
    if out is not None:
        from actlab.lab.compare import gradient_figure

        gradient_figure([c], out=out)
    if as_json:
        console.print_json(_dumps(c.to_dict()))
        return
    t = Table(title=f"{name}: RMS ||dL/du^l|| at init, width {width}, {seeds} seeds")
    for col in ("layer", "theory", "measured", "measured / theory"):
        t.add_column(col, justify="right")
    for i in range(depth):
        t.add_row(str(i + 1), f"{c.predicted[i]:.4g}", f"{c.measured[i]:.4g}", f"{c.ratio[i]:.3f}")
    console.print(t)
    console.print(f"max deviation {100 * c.max_deviation:.1f}%" + (f"; wrote {out}" if out else ""))
