"""Run lab experiments and write the report: the engine behind ``actlab lab`` and ``actlab run``."""

from __future__ import annotations

import io
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from actlab._threads import torch_threads
from actlab.experiments import experiments, get_experiment
from actlab.experiments.base import MODES, Experiment, ExperimentResult, Mode, Verdict

Progress = Callable[[str, float, str], None]
"""``progress(experiment_name, fraction_done, message)``."""


def _render_png(exp: Experiment, numbers: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=110)
    exp.figure(numbers, fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def run_experiment(exp: Experiment | str, mode: Mode = "quick", progress: Progress | None = None,
                   overrides: dict[str, Any] | None = None) -> ExperimentResult:
    """Run one experiment; any error in it becomes an ``"error"`` result, never an exception.

    Args:
        exp: the experiment or its name.
        mode: ``"tiny"``, ``"quick"`` (default) or ``"full"``.
        progress: called as ``progress(name, fraction, message)``.
        overrides: settings to replace (e.g. ``{"seeds": [0, 1, 2]}``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if isinstance(exp, str):
        exp = get_experiment(exp)
    t0 = time.perf_counter()
    settings: dict[str, Any] = {}
    numbers: dict[str, Any] = {}
    cb = (lambda f, m: progress(exp.name, f, m)) if progress else (lambda f, m: None)
    # The lab's models are small: on a few cores one thread is many times faster than the
    # default (synchronisation costs more than the arithmetic), and it keeps runs repeatable.
    with torch_threads(1):
        try:
            settings = dict(exp.settings(mode))
            unknown = set(overrides or {}) - set(settings)
            if unknown:
                raise ValueError(f"unknown setting(s) {sorted(unknown)} for {exp.name}; valid: {sorted(settings)}")
            settings.update(overrides or {})
            missing = _missing_data(settings)
            if missing:  # a real data set that is not on disk: say so plainly, measure nothing
                return ExperimentResult(
                    name=exp.name, title=exp.title, claim=exp.claim, method=exp.method, mode=mode, settings=settings,
                    numbers={}, verdict=Verdict("inconclusive", f"not run: {missing}"), source=exp.source,
                    source_found=exp.source_found, proxy=exp.proxy(mode), seconds=time.perf_counter() - t0)
            numbers = exp.measure(settings, cb)
            verdict = exp.decide(numbers)
            table = exp.table(numbers)
            png = _render_png(exp, numbers)
            error = None
        except Exception as e:  # an experiment that breaks is reported, the lab goes on
            verdict = Verdict("error", f"{type(e).__name__}: {e}")
            table, png = [], None
            error = traceback.format_exc()
    cb(1.0, "done")
    return ExperimentResult(
        name=exp.name, title=exp.title, claim=exp.claim, method=exp.method, mode=mode, source=exp.source,
        source_found=exp.source_found, proxy=exp.proxy(mode),
        settings=settings, numbers=numbers, verdict=verdict, table=table, figure_png=png,
        seconds=time.perf_counter() - t0, error=error,
    )


def run_experiments(names: Sequence[str] | None = None, mode: Mode = "quick",
                    progress: Progress | None = None, *, jobs: int = 1,
                    on_result: Callable[[ExperimentResult], None] | None = None) -> list[ExperimentResult]:
    """Run the named experiments (all when ``names`` is None); the results come back in report order.

    Args:
        names: experiment names (default: every experiment).
        mode: ``"tiny"``, ``"quick"`` (default) or ``"full"``.
        progress: called as ``progress(name, fraction, message)``, from this process (also when the
            experiments run in worker processes).
        jobs: experiments run at once, each in its own worker process with one torch thread
            (``1``: one after another in this process). Every experiment seeds what it draws, so
            the numbers are the same for any ``jobs`` (timings aside).
        on_result: called with each result as soon as it is finished (in finishing order), e.g.
            to keep what is done when the run is interrupted.

    An interrupt (KeyboardInterrupt) kills the worker processes at once and propagates; results
    already handed to ``on_result`` are complete.
    """
    chosen = [get_experiment(n) for n in names] if names else experiments()
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if jobs == 1 or len(chosen) <= 1:
        out = []
        for e in chosen:
            out.append(run_experiment(e, mode, progress))
            if on_result:
                on_result(out[-1])
        return out
    return _run_parallel(chosen, mode, progress, min(jobs, len(chosen)), on_result)


_QUEUE: Any = None
"""In a worker process: the queue its progress messages go back to the driver on."""


def _init_lab_worker(queue: Any) -> None:
    from actlab._workers import init_worker

    global _QUEUE
    init_worker(1)
    _QUEUE = queue


def _send_progress(name: str, fraction: float, message: str) -> None:
    try:
        _QUEUE.put_nowait((name, float(fraction), str(message)))
    except Exception:  # noqa: BLE001 - progress is a courtesy; never let it break a run
        pass


def _run_in_worker(name: str, mode: Mode) -> ExperimentResult:
    return run_experiment(name, mode, _send_progress)


def _run_parallel(chosen: Sequence[Experiment], mode: Mode, progress: Progress | None, jobs: int,
                  on_result: Callable[[ExperimentResult], None] | None) -> list[ExperimentResult]:
    """:func:`run_experiments` over a ``spawn`` pool of ``jobs`` worker processes."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from actlab._workers import kill_pool

    ctx = mp.get_context("spawn")  # no fork: torch's and numba's thread pools do not survive one
    q = ctx.Queue()
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_lab_worker, initargs=(q,))
    # The longest first (the measured cost hint), so a long experiment does not start last and
    # stretch the run; the report keeps its own order whatever the finishing order.
    order = sorted(range(len(chosen)), key=lambda i: -chosen[i].expected_seconds.get(mode, 0.0))
    futures = {pool.submit(_run_in_worker, chosen[i].name, mode): i for i in order}
    results: list[ExperimentResult | None] = [None] * len(chosen)
    finished: set[str] = set()

    def drain() -> None:
        while True:
            try:
                name, frac, msg = q.get_nowait()
            except queue_mod.Empty:
                return
            # the queue and the result travel apart: a late message must not reopen a finished bar
            if progress and name not in finished:
                progress(name, frac, msg)

    try:
        todo = set(futures)
        while todo:
            done, todo = wait(todo, timeout=0.2, return_when=FIRST_COMPLETED)
            drain()
            for f in done:
                i = futures[f]
                try:
                    r = f.result()
                except Exception as e:  # noqa: BLE001 - a worker that died (killed, out of memory)
                    exp = chosen[i]
                    r = ExperimentResult(name=exp.name, title=exp.title, claim=exp.claim, method=exp.method,
                                         mode=mode, settings={}, numbers={},
                                         verdict=Verdict("error", f"worker process failed: {type(e).__name__}: {e}"),
                                         source=exp.source, source_found=exp.source_found, proxy=exp.proxy(mode),
                                         error=traceback.format_exc())
                results[i] = r
                finished.add(r.name)
                if progress:
                    progress(r.name, 1.0, "done")
                if on_result:
                    on_result(r)
    except BaseException:
        kill_pool(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    q.close()
    return [r for r in results if r is not None]


def _missing_data(settings: dict[str, Any]) -> str:
    """"" when the real data set named by ``settings["data"]`` (if any) is on disk, else why not and
    exactly where to put it."""
    from actlab.lab.data import IDX_FOLDERS, SHA256, data_dir_candidates, resolve_data_dir, verify

    name = str(settings.get("data", "")).strip().lower().replace("-", "_")
    if name not in SHA256:
        return ""
    state = verify(name)
    bad = {k: v for k, v in state.items() if v != "ok"}
    if not bad:
        return ""
    import os

    folder = resolve_data_dir(None, name) / IDX_FOLDERS[name]
    where = ("$ACTLAB_DATA" if os.environ.get("ACTLAB_DATA") else
             "the default: none of " + ", ".join(str(c) for c in data_dir_candidates()) + " holds it")
    what = "; ".join(f"{k} ({v[:40]})" for k, v in bad.items())
    return (f"{name} files {what} in {folder}/ (the data directory comes from {where}). Put the four IDX files "
            f"(raw or .gz) in {folder}/, or pass --data-dir DIR (or set ACTLAB_DATA=DIR) where DIR/{IDX_FOLDERS[name]}/ "
            f"holds them; `actlab data download {name}` fetches and verifies them (needs internet)")


def _git_commit() -> str:
    """The commit of the actlab checkout the code was imported from (plus "+dirty" when it has changes)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def _datasets_used(results: Sequence[ExperimentResult]) -> list[str]:
    """Names of the IDX data sets (MNIST, Fashion-MNIST) any experiment's settings name."""
    from actlab.lab.data import SHA256

    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, str):
            key = v.strip().lower().replace("-", "_")
            if key in SHA256:
                found.add(key)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for r in results:
        walk(r.settings)
    return sorted(found)


def provenance(results: Sequence[ExperimentResult]) -> dict[str, Any]:
    """What a reader needs to repeat the run: the code's git commit, library versions, the hardware,
    and the decompressed SHA-256 of every real data file an experiment read (checked against the
    canonical checksums). Each experiment's full settings are in its own result."""
    import os
    import platform

    import numpy
    import torch

    from actlab.lab.data import SHA256, resolve_data_dir, verify

    hw = {"machine": platform.machine(), "processor": platform.processor() or "unknown",
          "cpu cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
          "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}
    data: dict[str, Any] = {}
    for name in _datasets_used(results):
        checked = verify(name)  # decompressed SHA-256 against the canonical one, per file
        data[name] = {"data dir": str(resolve_data_dir(None, name)),
                      **{stem: {"status": st, "sha256": SHA256[name][stem] if st == "ok" else st}
                         for stem, st in checked.items()}}
    import sys

    return {"git commit": _git_commit(), "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(), "hardware": hw, "data files": data}


def write_outputs(results: Sequence[ExperimentResult], out: Path, *, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.html`` (self-contained), ``results.json`` (with :func:`provenance`) and one PNG
    per experiment to ``out``.

    Each file is replaced atomically, the numbers first; a file that cannot be written is saved
    to the temporary folder instead (:class:`~actlab._io.OutputError` says where).
    """
    from actlab._io import write_atomic
    from actlab._json import dumps
    from actlab.experiments.report import render_html

    out = Path(out)
    meta = dict(meta or {})
    payload = {"meta": meta, "provenance": provenance(results), "results": [r.to_json() for r in results]}
    write_atomic(out / "results.json", dumps(payload, indent=2))
    for r in results:
        if r.figure_png:
            write_atomic(out / "figures" / f"{r.name}.png", r.figure_png)
    write_atomic(out / "report.html", render_html(results, {**meta, "git commit": payload["provenance"]["git commit"]}))
    return {"html": out / "report.html", "json": out / "results.json", "figures": out / "figures"}
