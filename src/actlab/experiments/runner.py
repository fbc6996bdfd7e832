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
        name=exp.name, title=exp.title, claim=exp.claim, method=exp.method, mode=mode,
        settings=settings, numbers=numbers, verdict=verdict, table=table, figure_png=png,
        seconds=time.perf_counter() - t0, error=error,
    )


def run_experiments(names: Sequence[str] | None = None, mode: Mode = "quick",
                    progress: Progress | None = None) -> list[ExperimentResult]:
    """Run the named experiments (all when ``names`` is None) in report order."""
    chosen = [get_experiment(n) for n in names] if names else experiments()
    return [run_experiment(e, mode, progress) for e in chosen]


def write_outputs(results: Sequence[ExperimentResult], out: Path, *, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.html`` (self-contained), ``results.json`` and one PNG per experiment to ``out``.

    Each file is replaced atomically, the numbers first; a file that cannot be written is saved
    to the temporary folder instead (:class:`~actlab._io.OutputError` says where).
    """
    from actlab._io import write_atomic
    from actlab._json import dumps
    from actlab.experiments.report import render_html

    out = Path(out)
    meta = dict(meta or {})
    payload = {"meta": meta, "results": [r.to_json() for r in results]}
    write_atomic(out / "results.json", dumps(payload, indent=2))
    for r in results:
        if r.figure_png:
            write_atomic(out / "figures" / f"{r.name}.png", r.figure_png)
    write_atomic(out / "report.html", render_html(results, meta))
    return {"html": out / "report.html", "json": out / "results.json", "figures": out / "figures"}
