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
                    progress: Progress | None = None) -> list[ExperimentResult]:
    """Run the named experiments (all when ``names`` is None) in report order."""
    chosen = [get_experiment(n) for n in names] if names else experiments()
    return [run_experiment(e, mode, progress) for e in chosen]


def _missing_data(settings: dict[str, Any]) -> str:
    """"" when the real data set named by ``settings["data"]`` (if any) is on disk, else why not."""
    from actlab.lab.data import SHA256, resolve_data_dir, verify

    name = str(settings.get("data", "")).strip().lower().replace("-", "_")
    if name not in SHA256:
        return ""
    state = verify(name)
    bad = {k: v for k, v in state.items() if v != "ok"}
    if not bad:
        return ""
    return (f"{name} files {', '.join(f'{k} ({v[:40]})' for k, v in bad.items())} in {resolve_data_dir(None)}; "
            "set ACTLAB_DATA (or run `actlab data download`) to the folder holding them")


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
        data[name] = {"data dir": str(resolve_data_dir(None)),
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
