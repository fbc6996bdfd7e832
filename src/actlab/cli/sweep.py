"""``actlab sweep``: run a grid of configurations on the batched engine, and report on it.

``actlab sweep SPEC`` is short for ``actlab sweep run SPEC``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from actlab.cli.app import (DATA_DIR_DEFAULT_TEXT, app, check_output, console, default_group, fail, note,
                            print_json, table_console, write_json)

MAX_CONFIGS = 10_000
"""A spec with more configurations than this asks for ``--yes`` (expanding 10^6 takes minutes)."""


sweep_app = typer.Typer(cls=default_group("run"), no_args_is_help=True,
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
    workers: int = typer.Option(1, "--workers", min=1, help="Local worker processes (default 1: the batched "
                                "engine already uses every core in one process, and each worker pays its own "
                                "start-up; more help only with more cores than one process keeps busy)."),
    chunk_size: int = typer.Option(64, "--chunk-size", min=1, help="Most models trained as one stacked computation."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where MNIST / Fashion-MNIST IDX files are "
                                         f"(default: {DATA_DIR_DEFAULT_TEXT})."),
    yes: bool = typer.Option(False, "--yes", "-y", help=f"Run a spec of more than {MAX_CONFIGS} configurations."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary to stdout instead of a progress bar."),
    json_out: Path | None = typer.Option(None, "--json-out", help="Also write the JSON summary to this file."),
) -> None:
    """Run every configuration of SPEC (and/or --axis flags) not yet finished in the store (resumable).

    Ctrl-C (or SIGTERM) stops within a second or two and says how many are saved; the same
    command resumes.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from actlab.sweep.backends import BACKENDS
    from actlab.sweep.spec import SpecTooLarge, load_spec, parse_axis_flags, spec_from_flags

    if backend not in BACKENDS:
        raise fail(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if address and backend != "ray":
        raise fail("--address needs --backend ray")
    if spec is None and not axis:
        raise fail("give a spec file, or axes with --axis NAME=V1,V2 (e.g. --axis activation=relu,tanh)")
    if workers > 64:
        raise fail(f"--workers must be in [1, 64], got {workers}")
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers > 1 and workers >= cores:
        note(f"--workers {workers} on {cores} cores: the batched engine already uses every core in one process, "
             "and each worker first loads its own Python, torch and data (~4.5 CPU-seconds), so --workers 1 is "
             "faster here")
    if data_dir is not None:
        if not data_dir.is_dir():
            raise fail(f"--data-dir {str(data_dir)!r} is not a directory")
        import os

        os.environ["ACTLAB_DATA"] = str(data_dir.resolve())  # workers inherit it
    check_output(store, option="--store")
    check_output(json_out, option="--json-out")
    limit = None if yes else MAX_CONFIGS
    flags = parse_axis_flags(axis)
    try:
        sw = load_spec(spec, max_configs=limit, **flags) if spec is not None else \
            spec_from_flags(name, max_configs=limit, **flags)
    except SpecTooLarge as e:
        raise fail(f"the spec holds {e.size} configurations, more than {e.limit}: pass --yes to run them all") from None
    if backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise fail("--backend ray needs ray: pip install 'actlab[ray]'")
    path = store or Path(f"{sw.name}.sweep.db")
    check_output(path, option="--store")
    n = sw.size
    t0 = time.perf_counter()
    st = _open(path)
    if as_json:  # stdout holds the JSON document: progress goes to stderr, a line per tenth of the configs
        said = [-1]

        def to_stderr(fraction: float, message: str = "") -> None:
            tenth = int(fraction * 10 + 1e-9)
            if tenth > said[0]:
                said[0] = tenth
                note(f"sweep {sw.name}: {round(fraction * n)} of {n} configs done, {time.perf_counter() - t0:.0f} s")

        st_done = _run_interruptible(sw, st, n, backend, workers, address, chunk_size, None, to_stderr)
    else:
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("models"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(escape(f"sweep {sw.name} ({n} configs, {backend})"), total=n)
            st_done = _run_interruptible(sw, st, n, backend, workers, address, chunk_size, bar,
                                         lambda fraction, message="": bar.update(task, completed=fraction * n))
    counts = st_done.status_counts(sw.hash)
    summary = {"spec": str(spec) if spec else None, "spec_hash": sw.hash, "store": str(path), "configs": n,
               "status": counts, "wall_s": round(time.perf_counter() - t0, 3), "backend": backend}
    if json_out is not None:
        write_json(json_out, summary)
    if as_json:
        print_json(summary)
    else:
        console.print(f"done: {counts} in {summary['wall_s']:.1f} s -> {path}  "
                      f"(report: actlab sweep report {path} --out DIR)", markup=False, highlight=False)


def _open(path: Path, readonly: bool = False) -> Any:
    from actlab.sweep.store import Store

    return Store(path, readonly=readonly)


def _run_interruptible(sw: Any, st: Any, n: int, backend: str, workers: int, address: str | None, chunk_size: int,
                       bar: Any, progress: Any = None) -> Any:
    """``run_sweep`` with SIGINT / SIGTERM turned into "k of n saved, run the same command to resume".

    A chunk's results are committed in one transaction, so stopping at any instant loses at most
    the chunks in flight; the handler counts what the store holds, stops the workers and exits.
    """
    import os
    import signal

    from actlab.sweep.backends import stop_workers
    from actlab.sweep.backends.local import run_sweep

    if backend == "ray":  # ray.init replaces the SIGTERM handler: connect before installing ours
        from actlab.sweep.backends.ray import connect

        try:
            connect(address)
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds; each is the user's address or install
            first = (str(e).strip().splitlines() or [""])[0]
            where = f" at {address!r}" if address else ""
            raise fail(f"cannot start or join Ray{where}: {type(e).__name__}: {first}") from None

    def stop(signum: int, frame: Any) -> None:
        stop_workers()
        if bar is not None:
            bar.stop()
        try:
            saved = sum(_open(Path(st.path), readonly=True).status_counts(sw.hash).get(k, 0)
                        for k in ("done", "diverged"))
            said = f"{saved} of {n} configurations saved in {st.path}"
        except Exception:  # noqa: BLE001 - the count is a courtesy; the store is safe regardless
            said = f"the finished configurations are saved in {st.path}"
        fail(f"interrupted: {said}; run the same command to resume")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_sweep(sw, st, backend=backend, workers=workers, address=address, chunk_size=chunk_size,
                         progress=progress)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@sweep_app.command("report")
def report(
    store: Path = typer.Argument(..., help="SQLite store written by `actlab sweep run`."),
    out: Path = typer.Option(..., "--out", help="Directory for heatmaps (PNG), table.csv, table.md, summary.json."),
    spec_hash: str | None = typer.Option(None, "--spec", help="Only this sweep (hash prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON to stdout."),
    json_out: Path | None = typer.Option(None, "--json-out", help="Also write the summary as JSON to this file."),
    wide: bool = typer.Option(False, "--wide", help="Every column of the table (default: fit 80 columns; "
                              "table.md keeps every column)."),
) -> None:
    """Heatmaps of final loss, steps to target and inactive share over activation x each varied axis, and a table."""
    from actlab.sweep.report import make_report, terminal_table

    check_output(out, kind="dir", option="--out")
    check_output(json_out, option="--json-out")
    st = _open(store, readonly=True)
    summary = make_report(st, out, spec_hash=spec_hash)
    if json_out is not None:
        write_json(json_out, summary)
    if as_json:
        print_json(summary)
        return
    console.print(f"{summary['configs']} configurations {summary['status']}; wrote {len(summary['files'])} files to "
                  f"{out}", highlight=False, markup=False)
    if summary["table"]:
        table_console(wide).print(terminal_table(summary, wide=wide))
    else:
        console.print("no finished configurations yet", highlight=False, markup=False)
