"""``actlab lab`` (every claim, one report) and ``actlab run NAME`` (one claim)."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rich.markup import escape

from actlab.cli.app import app, check_output, console, fail, print_json, table_console, write_json

_STATUS_STYLE = {"confirmed": "green", "not confirmed": "red", "inconclusive": "yellow", "error": "dim"}


def _run(names: list[str] | None, mode: str, out: Path, as_json: bool, data_dir: Path | None = None,
         json_out: Path | None = None, wide: bool = False) -> None:
    import os

    import actlab
    from actlab.experiments import UnknownExperiment, get_experiment
    from actlab.experiments.base import MODES
    from actlab.experiments.runner import run_experiment, write_outputs

    if mode not in MODES:
        raise fail(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    check_output(out, kind="dir", option="--out")
    check_output(json_out, option="--json-out")
    if data_dir is not None:
        if not data_dir.is_dir():
            raise fail(f"--data-dir {str(data_dir)!r} is not a directory")
        # The experiments read the data directory through the same variable users set.
        os.environ["ACTLAB_DATA"] = str(data_dir.resolve())
    try:
        chosen = [get_experiment(n) for n in names] if names else None
    except UnknownExperiment as e:
        raise fail(str(e)) from None
    if chosen is None:
        from actlab.experiments import experiments

        chosen = experiments()
    import torch

    t0 = time.perf_counter()
    results = []
    with Progress(
        TextColumn("[bold]{task.description:<34}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("[dim]{task.fields[msg]}"), TimeElapsedColumn(), console=console, transient=False,
        disable=as_json,
    ) as bar:
        overall = bar.add_task(f"{len(chosen)} experiments ({mode})", total=len(chosen), msg="")
        for exp in chosen:
            task = bar.add_task(exp.name, total=1.0, msg="")

            def progress(name: str, frac: float, msg: str, task: int = task) -> None:
                bar.update(task, completed=min(max(frac, 0.0), 1.0), msg=escape(msg[:40]))

            r = run_experiment(exp, mode, progress)
            style = _STATUS_STYLE.get(r.verdict.status, "")
            bar.update(task, completed=1.0, msg=f"[{style}]{r.verdict.status}[/] in {r.seconds:.1f} s")
            bar.advance(overall)
            results.append(r)
    meta = {
        "actlab": actlab.__version__,
        "torch": torch.__version__,
        "mode": mode,
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    paths = write_outputs(results, out, meta=meta)
    doc = {"report": str(paths["html"]), "results": [r.to_json() for r in results]}
    if json_out is not None:
        write_json(json_out, doc)
    if as_json:
        print_json(doc)
    else:
        table = Table(title="Claims and verdicts", show_lines=False)
        table.add_column("experiment", overflow="fold")
        table.add_column("verdict", no_wrap=True)
        table.add_column("why", overflow="fold")
        for r in results:
            style = _STATUS_STYLE.get(r.verdict.status, "")
            table.add_row(escape(r.name), f"[{style}]{r.verdict.status}[/]", escape(r.verdict.reason))
        table_console(wide).print(table)
        console.print(f"Report: {paths['html']}  (numbers: {paths['json']})", markup=False, highlight=False)
    if any(r.verdict.status == "error" for r in results):
        raise typer.Exit(1)


@app.command("lab")
def lab(
    out: Path = typer.Option(Path("actlab-report"), "--out", "-o", help="Folder for report.html, results.json, figures/."),
    full: bool = typer.Option(False, "--full", help="More seeds and data (slower)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="tiny | quick | full (overrides --full)."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only these experiments (repeatable)."),
    list_: bool = typer.Option(False, "--list", help="List the experiments and their claims, then exit."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON to stdout instead of tables."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the results as JSON to this file."),
    wide: bool = typer.Option(False, "--wide", help="Tables at full width (default: fit 80 columns)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where MNIST / Fashion-MNIST IDX files are "
                                            "(default: $ACTLAB_DATA or ~/.cache/actlab/data)."),
) -> None:
    """Run every classic claim about activation functions on real data; write one HTML report."""
    if list_:
        from actlab.experiments import experiments

        exps = experiments()
        if as_json:
            print_json([{"name": e.name, "title": e.title, "claim": e.claim, "needs": list(e.needs)} for e in exps])
            return
        table = Table(title=f"{len(exps)} experiments")
        table.add_column("name", no_wrap=True)
        table.add_column("claim", overflow="fold")
        for e in exps:
            table.add_row(escape(e.name), escape(e.claim))
        table_console(wide).print(table)
        return
    _run(list(only) if only else None, mode or ("full" if full else "quick"), out, as_json, data_dir, json_out, wide)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Experiment name (see `actlab lab --list`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the report "
                                       "(default: actlab-report/run-NAME, so the full lab report is kept)."),
    mode: str = typer.Option("quick", "--mode", help="tiny | quick | full."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON to stdout."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the result as JSON to this file."),
    wide: bool = typer.Option(False, "--wide", help="Tables at full width (default: fit 80 columns)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where MNIST / Fashion-MNIST IDX files are."),
) -> None:
    """Run one experiment and write its report (to actlab-report/run-NAME/ unless --out)."""
    _run([name], mode, out if out is not None else Path("actlab-report") / f"run-{name}", as_json, data_dir,
         json_out, wide)
