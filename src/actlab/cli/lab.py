"""``actlab lab`` (every claim, one report) and ``actlab run NAME`` (one claim)."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rich.markup import escape

from actlab.cli.app import (DATA_DIR_DEFAULT_TEXT, app, check_output, console, err_console, fail, print_json,
                            table_console, write_json)

_STATUS_STYLE = {"confirmed": "green", "not confirmed": "red", "inconclusive": "yellow", "error": "dim"}


def _run(names: list[str] | None, mode: str, out: Path, as_json: bool, data_dir: Path | None = None,
         json_out: Path | None = None, wide: bool = False, jobs: int | None = None) -> None:
    import os

    from actlab._workers import usable_cores
    from actlab.experiments import UnknownExperiment, get_experiment
    from actlab.experiments.base import MODES
    from actlab.experiments.runner import run_experiments, write_outputs

    if mode not in MODES:
        raise fail(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if jobs is not None and not 1 <= jobs <= 256:
        raise fail(f"--jobs must be in [1, 256], got {jobs}")
    check_output(out, kind="dir", option="--out")
    check_output(json_out, option="--json-out")
    if data_dir is not None:
        if not data_dir.is_dir():
            raise fail(f"--data-dir {str(data_dir)!r} is not a directory")
        # The experiments (and the worker processes, which inherit it) read the data directory
        # through the same variable users set.
        os.environ["ACTLAB_DATA"] = str(data_dir.resolve())
    try:
        chosen = [get_experiment(n) for n in names] if names else None
    except UnknownExperiment as e:
        raise fail(str(e)) from None
    if chosen is None:
        from actlab.experiments import experiments

        chosen = experiments()
    n_jobs = min(jobs or usable_cores(), len(chosen))
    t0 = time.perf_counter()
    finished: list = []
    with Progress(
        TextColumn("[bold]{task.description:<34}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("[dim]{task.fields[msg]}"), TimeElapsedColumn(), console=console, transient=False,
        disable=as_json,
    ) as bar:
        overall = bar.add_task(f"{len(chosen)} experiments ({mode}, {n_jobs} at once)", total=len(chosen), msg="")
        tasks = {e.name: bar.add_task(e.name, total=1.0, msg="waiting", start=False) for e in chosen}

        started: set[str] = set()

        def progress(name: str, frac: float, msg: str) -> None:
            if name not in started:  # the clock of a waiting experiment starts when it does
                started.add(name)
                bar.start_task(tasks[name])
            bar.update(tasks[name], completed=min(max(frac, 0.0), 1.0), msg=escape(msg[:40]))

        def done(r: Any) -> None:
            style = _STATUS_STYLE.get(r.verdict.status, "")
            bar.update(tasks[r.name], completed=1.0, msg=f"[{style}]{r.verdict.status}[/] in {r.seconds:.1f} s")
            bar.stop_task(tasks[r.name])
            bar.advance(overall)
            finished.append(r)
            # a log file or CI (the bars do not draw there), or --json (stdout holds the document):
            # one line per finished experiment, on stderr for --json
            if as_json or not console.is_terminal:
                (err_console if as_json else console).print(
                    f"{r.name}: {r.verdict.status} in {r.seconds:.1f} s "
                    f"({len(finished)}/{len(chosen)} done, {time.perf_counter() - t0:.0f} s)",
                    markup=False, highlight=False)

        try:
            with _signals_as_interrupt():
                results = run_experiments([e.name for e in chosen], mode, progress, jobs=n_jobs, on_result=done)
        except KeyboardInterrupt:
            bar.stop()
            _interrupted(finished, chosen, out, mode, t0)
    import torch

    import actlab

    meta = {
        "actlab": actlab.__version__,
        "torch": torch.__version__,
        "mode": mode,
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {usable_cores()} cores",
        "jobs": f"{n_jobs} experiments at once, one torch thread each",
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


@contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM (a scheduler stopping the job) end the run: finished work is kept.

    Both are set here, not left to Python's default: a process started in the background by a
    shell script inherits SIGINT ignored, and would then run on to the end.
    """
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave the signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _interrupted(finished: list, chosen: list, out: Path, mode: str, t0: float) -> NoReturn:
    """Write the report of the experiments that finished, say so in one line, exit 130."""
    from actlab.experiments.runner import write_outputs

    order = {e.name: i for i, e in enumerate(chosen)}
    done = sorted(finished, key=lambda r: order[r.name])
    left = [e.name for e in chosen if e.name not in {r.name for r in done}]
    where = "nothing written"
    if done:
        meta = {"mode": mode, "seconds": round(time.perf_counter() - t0, 1),
                "interrupted": f"{len(done)} of {len(chosen)} experiments finished; not run: {', '.join(left)}"}
        try:
            where = f"their report is in {write_outputs(done, out, meta=meta)['html']}"
        except OSError as e:
            where = f"their report could not be written ({e})"
    fail(f"interrupted: {len(done)} of {len(chosen)} experiments finished ({where}); to run the rest: "
         f"actlab lab --mode {mode} " + " ".join(f"--only {n}" for n in left))
    raise typer.Exit(130)


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
                                            f"(default: {DATA_DIR_DEFAULT_TEXT})."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Experiments run at once, each in its own "
                                       "process with one thread (default: the cores this process may use; "
                                       "1 = one after another). The numbers are the same for any value."),
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
    _run(list(only) if only else None, mode or ("full" if full else "quick"), out, as_json, data_dir, json_out, wide,
         jobs)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Experiment name (see `actlab lab --list`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the report "
                                       "(default: actlab-report/run-NAME, so the full lab report is kept)."),
    mode: str = typer.Option("quick", "--mode", help="tiny | quick | full."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON to stdout."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the result as JSON to this file."),
    wide: bool = typer.Option(False, "--wide", help="Tables at full width (default: fit 80 columns)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where MNIST / Fashion-MNIST IDX files are "
                                            f"(default: {DATA_DIR_DEFAULT_TEXT})."),
) -> None:
    """Run one experiment and write its report (to actlab-report/run-NAME/ unless --out)."""
    _run([name], mode, out if out is not None else Path("actlab-report") / f"run-{name}", as_json, data_dir,
         json_out, wide)
