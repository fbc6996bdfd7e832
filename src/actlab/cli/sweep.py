"""``actlab sweep``: run a grid of configurations on the batched engine, and report on it.

``actlab sweep SPEC`` is short for ``actlab sweep run SPEC``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from actlab.cli.app import app, console, fail


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it is not a sub-command, is the SPEC of ``run``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True,
                        help="Sweeps: train a grid of configurations as one batched computation "
                             "(`actlab sweep SPEC` = `actlab sweep run SPEC`), then report.")
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("run")
def run(
    spec: Path | None = typer.Argument(None, help="Sweep spec: .yaml/.yml or .toml (see examples/sweep_small.yaml)."),
    axis: list[str] = typer.Option([], "--axis", help="NAME=V1,V2,... : an axis from the command line (repeatable; "
                                   "overrides the spec file's)."),
    name: str = typer.Option("flags", "--name", help="Sweep name when there is no spec file."),
    store: Path | None = typer.Option(None, "--store", help="SQLite store (default: <spec name>.sweep.db)."),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (backend ray)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Local worker processes."),
    chunk_size: int = typer.Option(64, "--chunk-size", min=1, help="Most models trained as one stacked computation."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of a progress bar."),
) -> None:
    """Run every configuration of SPEC (and/or --axis flags) not yet finished in the store (resumable)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from actlab.sweep.backends import BACKENDS
    from actlab.sweep.backends.local import run_sweep
    from actlab.sweep.spec import (
        SpecError,
        load_spec,
        parse_axis_flags,
        spec_from_flags,
    )

    if backend not in BACKENDS:
        raise fail(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if address and backend != "ray":
        raise fail("--address needs --backend ray")
    if spec is None and not axis:
        raise fail("give a spec file, or axes with --axis NAME=V1,V2 (e.g. --axis activation=relu,tanh)")
    try:
        flags = parse_axis_flags(axis)
        sw = load_spec(spec, **flags) if spec is not None else spec_from_flags(name, **flags)
    except SpecError as e:
        raise fail(str(e)) from None
    if backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise fail("--backend ray needs ray: pip install 'actlab[ray]'")
    path = store or Path(f"{sw.name}.sweep.db")
    n = len(sw.configs())
    t0 = time.perf_counter()
    try:
        if as_json:
            st = run_sweep(sw, path, backend=backend, workers=workers, address=address, chunk_size=chunk_size)
        else:
            columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("models"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
            with Progress(*columns, console=console) as bar:
                task = bar.add_task(f"sweep {sw.name} ({n} configs, {backend})", total=n)
                st = run_sweep(sw, path, backend=backend, workers=workers, address=address, chunk_size=chunk_size,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        raise fail(f"sweep failed: {e}") from None
    counts = st.status_counts(sw.hash)
    summary = {"spec": str(spec) if spec else None, "spec_hash": sw.hash, "store": str(path), "configs": n,
               "status": counts, "wall_s": round(time.perf_counter() - t0, 3), "backend": backend}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        console.print(f"[green]done[/]: {counts} in {summary['wall_s']:.1f} s -> {path}  "
                      f"(report: actlab sweep report {path} --out DIR)", highlight=False)


@sweep_app.command("report")
def report(
    store: Path = typer.Argument(..., help="SQLite store written by `actlab sweep run`."),
    out: Path = typer.Option(..., "--out", help="Directory for heatmaps (PNG), table.csv, table.md, summary.json."),
    spec_hash: str | None = typer.Option(None, "--spec", help="Only this sweep (hash prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Heatmaps of final loss, steps to target and dead fraction over activation x each varied axis, and a table."""
    from actlab.sweep.report import make_report

    if not store.is_file():
        raise fail(f"store not found: {str(store)!r}")
    try:
        summary = make_report(store, out, spec_hash=spec_hash)
    except KeyError as e:
        raise fail(str(e.args[0])) from None
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    console.print(f"{summary['configs']} configurations {summary['status']}; wrote {len(summary['files'])} files to "
                  f"{out}", highlight=False)
    console.print((Path(out) / "table.md").read_text(), highlight=False, markup=False)
