"""Old code against new, side by side: did anything get slower?

The same measurement code (this directory's ``probe_overhead.py``, ``sweep.py`` and
``activations.py``, their own functions) is run against two copies of actlab: the OLD one, a
base revision exported from git into a cache directory (default ``e53e0b0``, main before
issue 12), and the NEW one (this working tree, or another revision with ``--new``).

Both trees run in each process: the OLD one is imported as ``actlab_old`` from a copy with the
package renamed (:func:`renamed_copy`), the NEW one as ``actlab``, and their work takes turns
within the process, so the process's memory layout and the machine's drift fall on both sides
alike.  A process gives one cost ratio new/old per figure; the interval is over ``--reps``
processes.  (Run one process per tree, the same figure moved by several percent from one
process to the next with its memory layout, more than the 2 % tolerance, and most verdicts came
out inconclusive; ``--separate`` still runs it that way: each run a fresh process whose
``PYTHONPATH`` points at one copy's ``src``, old-new then new-old, ``--reps`` pairs.)  Every
process reports which ``actlab`` (and ``actlab_old``) it imported; a wrong one stops the
comparison.

Figures, per benchmark (``--benchmarks``; the same work on both sides):

- ``probe_overhead``: an SGD step of the MLP (and ``--models``) with ``Probe(model, every=1)``
  and ``every=10`` attached, over the same process's step without a probe (CPU time,
  ``probe_overhead.bench``: fresh models every repetition, the variants taking turns every
  ``BLOCK`` steps).  Paired, "no probe" and the OLD and NEW probes at each schedule are five
  variants of one ``bench`` call, and the ratio is the NEW probe's step time over the OLD one's in
  the same repetition (median over ``--inner`` repetitions);
- ``sweep``: the batched engine (``engine.train_group``, ``--configs`` MLPs of ``sweep.configs``
  x ``--steps``, its default record schedule every 50 steps: loss, layer gradient norm, inactive
  and saturated shares under either tree's names), model-steps per CPU-second.  Paired, the two
  engines' calls take turns (the median ratio over couples of turns, see below).  The one-by-one
  path is not compared: since issue 12 it measures the whole data sets before and after
  training (``lab.train``), more work than before by design; glibc malloc tuned as for the
  activations (``MALLOC_TUNED``);
- ``activations``: ``apply(spec, x)`` forward and forward + backward of every activation both
  catalogs hold, ``--size`` float32 elements, wall time, glibc malloc tuned as ``activations.py``
  does.  Paired, the two trees' calls take turns on the same tensors.

A couple of turns (:func:`_couples`) runs each side once first and once second: the second call
of a turn finds what the first left in the caches, so a ratio per turn would alternate with the
order.

For each figure the table gives old and new (medians over the runs), the cost ratio new/old per
process or pair (> 1: new is slower; for rates, old/new), its median and quartiles, and a distribution-free
confidence interval for the median ratio (order statistics, at least ``--confidence``). A gated
figure is

- ``slower`` when the whole interval lies above ``1 + --tolerance``;
- ``not slower`` when it lies at or below ``1 + --tolerance``;
- ``inconclusive`` otherwise (the noise is wider than the tolerance) or with too few pairs for
  the interval (5 at 90 %): the check is blind there and says so.

``--isa`` runs everything on the machine's own instruction set (``avx512``) and with AVX-512
turned off (``avx2``): torch's kernels through ``ATEN_CPU_CAPABILITY=avx2``, numba's through
``NUMBA_CPU_NAME=haswell`` with ``NUMBA_CPU_FEATURES`` empty (the name alone keeps the host's
AVX-512 features), MKL's and oneDNN's through ``MKL_ENABLE_INSTRUCTIONS`` and
``ONEDNN_MAX_CPU_ISA``. A check process first shows that torch's capability and numba's target
took effect (and that numba's generated code holds no ``zmm`` register); each run reports torch's
capability again. MKL's and oneDNN's settings are passed, not verified (MKL's verbose line names
no instruction set on an AMD CPU). The machine (CPU model, AVX-512 flag, load) is printed with the figures.

Exit status: 0 when every gated figure is ``not slower``, 1 when one is ``slower``, 3 when none
is slower but one is ``inconclusive``, 2 when a run failed or the ISA could not be forced.

Run::

    python benchmarks/side_by_side.py                       # all three, avx512 and avx2, 5 processes each
    python benchmarks/side_by_side.py --benchmarks sweep --isa avx2 --reps 9 --json-out sbs.json
    python benchmarks/side_by_side.py --base HEAD~3 --new HEAD --benchmarks activations --only gelu,mish
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:  # imported by file (the tests), not run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import add_output_options, finish, machine, parse  # noqa: E402

# ---- settings
DEFAULT_BASE = "e53e0b0"     # main before issue 12's work started
BENCHMARKS = ("probe_overhead", "sweep", "activations")
TOLERANCE = 0.02             # a cost ratio up to 1.02 counts as "not slower"
CONFIDENCE = 0.90            # least coverage of the interval for the median ratio
ROOT = Path(__file__).resolve().parents[1]   # the NEW tree by default (this working tree)
HERE = Path(__file__).resolve().parent

# Environment of each instruction-set variant. Keys of every variant are cleared first, so a value
# inherited from the caller's shell cannot leak into the other variant.
ISA_ENV: dict[str, dict[str, str]] = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": "",   # empty: haswell's own features (unset, numba keeps the host's)
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN's older name
    },
}
ISA_KEYS = sorted({k for env in ISA_ENV.values() for k in env})
TORCH_CAPABILITY = {"avx512": "AVX512", "avx2": "AVX2"}  # what torch must report under each variant
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

DEFAULTS: dict[str, Any] = {
    "threads": 1,        # torch / OpenMP / MKL / numba threads, both sides
    "inner": 3,          # timed repetitions inside one run (its figure is their median)
    "models": "mlp",     # probe_overhead models (mlp, cnn, transformer)
    "probe_steps": 64,   # steps per repetition and variant (64: every block holds one flush of the probe's records)
    "configs": 32,       # sweep: configurations trained by one train_group call (2 stacks of 16)
    "steps": 200,        # sweep: SGD steps per configuration
    "size": 1 << 24,     # activations: float32 elements per tensor, as activations.py (at 2**22 the ~1 ms forwards' spread was ~3 %)
    "only": "",          # activations: comma-separated names (default: all both catalogs hold)
}


class SideBySideError(RuntimeError):
    """A run failed, or the variant asked for could not be set up; the message says which."""


# ---------------------------------------------------------------------------------------------
# Workloads: run inside a worker process, against whichever actlab PYTHONPATH points at. Each
# returns {figure: {"value", "unit", "gated", "higher_is_better"}}.


def _figure(value: float, unit: str, gated: bool, higher_is_better: bool = False) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "gated": gated, "higher_is_better": higher_is_better}


def _probe_workload(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import warnings

    import probe_overhead as po

    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    out: dict[str, dict[str, Any]] = {}
    variants = ["no probe", "probe every step", "probe every 10"]
    for kind in [m.strip() for m in p["models"].split(",") if m.strip()]:
        r = po.bench(kind, p["inner"], p["probe_steps"], 5, variants)
        out[f"{kind}: no probe, ms/step (control)"] = _figure(r["no probe"]["cpu"]["median_ms"], "ms", False)
        for v in variants[1:]:
            out[f"{kind}: {v} / no probe"] = _figure(r[v]["cpu"]["ratio_median"], "x", True)
            out[f"{kind}: {v}, ms/step"] = _figure(r[v]["cpu"]["median_ms"], "ms", False)
    return out


def _sweep_workload(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import sweep as sw

    from actlab.sweep.engine import load_data
    from actlab.sweep.spec import Record

    record = Record(every=50)
    load_data("digits", "standardise", None)
    # first-call costs (and the heap's growth to the size the timed calls need) are in neither figure
    sw.time_batched(sw.configs(p["configs"], 5), record, p["threads"])
    walls, cpus = [], []
    for _ in range(p["inner"]):
        wall, cpu = sw.time_batched(sw.configs(p["configs"], p["steps"]), record, p["threads"])
        walls.append(wall)
        cpus.append(cpu)
    return {"batched: model-steps per cpu-s": _figure(statistics.median(cpus), "1/s", True, True),
            "batched: model-steps per wall-s": _figure(statistics.median(walls), "1/s", False, True)}


def _activations_workload(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import activations as ab
    import torch

    from actlab.activations import get, specs

    chosen = [get(n) for n in p["only"].split(",") if n.strip()] if p["only"] else specs()
    out: dict[str, dict[str, Any]] = {}
    copies = []
    for spec in chosen:
        row = ab.bench_spec(spec, p["size"], p["inner"], 2, torch.float32, variants=("copy", "analytic"))
        for mode, md in row["modes"].items():
            # identity moves no bytes (apply returns its input): a Python call, no target in activations.py
            out[f"{spec.name} {mode}, ms"] = _figure(md["analytic"]["median_ms"], "ms", not spec.passthrough)
            copies.append(md["copy"]["median_ms"])
    out["copy, ms (control)"] = _figure(statistics.median(copies), "ms", False)
    return out


def _couples(cost: Callable[[str], float], turns: int) -> tuple[dict[str, list[float]], list[float]]:
    """Both sides taking turns, ``turns`` times (rounded up to whole couples, at least one):
    ``cost(side)`` runs one call of ``"old"`` or ``"new"`` and returns what it cost.  Returns each
    side's costs and the cost ratio new/old of each couple of turns.

    The call that runs second in a turn finds what the first one left in the caches: a ratio per
    turn alternates with the order.  A couple of turns (old first, then new first) has each side
    once in each place."""
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(max(2, turns + turns % 2)):
        for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
            times[side].append(cost(side))
    to, tn = times["old"], times["new"]
    return times, [(tn[j] + tn[j + 1]) / (to[j] + to[j + 1]) for j in range(0, len(to) - 1, 2)]


PAIRED_SEP = " | "  # "<figure> | new/old", "<figure> | old", "<figure> | new": one paired figure's entries


def _paired_figures(out: dict[str, dict[str, Any]], name: str, ratios: Sequence[float],
                    values: dict[str, Sequence[float]], unit: str, gated: bool = True,
                    higher_is_better: bool = False) -> None:
    """One paired figure into ``out``: the median cost ratio new/old of this process (gated), and
    each side's median ``values``, given in ``unit`` (shown, not judged)."""
    out[f"{name}{PAIRED_SEP}new/old"] = _figure(statistics.median(ratios), "x", gated)
    for side in ("old", "new"):
        out[f"{name}{PAIRED_SEP}{side}"] = _figure(statistics.median(values[side]), unit, False, higher_is_better)


OLD_PACKAGE = "actlab_old"  # the OLD tree's package name in a --paired run (see renamed_copy)


def _paired_calls(act: Any, spec: Any, x: Any, g: Any) -> dict[str, Callable[[], Any]]:
    """``apply(spec, x)`` of one catalog (``act``: its ``actlab.activations``), forward and forward +
    backward, as ``activations.py`` times them (the "analytic" variant)."""
    import activations as ab
    import torch

    p = ab._params(spec, x)  # the hyperparameters activations.py times with (either tree's spec)
    learn = [p[n] for n in spec.learnable]
    xg = x.detach().requires_grad_(True)

    def fwd() -> Any:
        with torch.no_grad():
            return act.apply(spec, x, **p)

    def fwdbwd() -> Any:
        return torch.autograd.grad(act.apply(spec, xg, **p), [xg, *learn], g)

    return {"fwd": fwd, "fwd+bwd": fwdbwd} if spec.backprop else {"fwd": fwd}


def _activations_paired_workload(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Both catalogs in one process (the OLD one imported as ``actlab_old``), the same input
    tensors, the two sides' calls taking turns (:func:`_couples`): per figure, the median cost
    ratio new/old over couples of turns (wall time).  The process's memory layout and the machine's drift, which move a
    figure by several percent from one process to the next, fall on both sides alike."""
    import importlib

    import torch

    new_act = importlib.import_module("actlab.activations")
    old_act = importlib.import_module(f"{OLD_PACKAGE}.activations")
    names = [n for n in p["only"].split(",") if n.strip()] if p["only"] else \
        [s.name for s in new_act.specs() if s.name in {o.name for o in old_act.specs()}]
    out: dict[str, dict[str, Any]] = {}
    gen = torch.Generator().manual_seed(0)
    for name in names:
        sn, so = new_act.get(name), old_act.get(name)
        shape = (p["size"] // 1024, 1024) if p["size"] % 1024 == 0 and p["size"] >= 1024 else (p["size"],)
        x = torch.randn(shape, generator=gen)
        with torch.no_grad():
            y = new_act.apply(sn, x)
        g = torch.randn(y.shape, generator=gen)
        del y
        sides = {"old": _paired_calls(old_act, so, x, g), "new": _paired_calls(new_act, sn, x, g)}
        for mode in sides["new"]:
            if mode not in sides["old"]:
                continue
            calls = {side: c[mode] for side, c in sides.items()}
            for _ in range(3):  # warm-up: first calls, the heap's growth to the size the calls need
                for c in calls.values():
                    del_ = c()
                    del del_

            def cost(side: str, calls: dict[str, Callable[[], Any]] = calls) -> float:
                t0 = time.perf_counter()
                res = calls[side]()
                t1 = time.perf_counter()
                del res
                return t1 - t0

            times, ratios = _couples(cost, p["inner"])
            ms = {side: [t * 1e3 for t in ts] for side, ts in times.items()}
            _paired_figures(out, f"{name} {mode}, ms", ratios, ms, "ms", gated=not sn.passthrough)
    return out


def _probe_paired_workload(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Both probes in one process: ``probe_overhead.bench`` interleaves "no probe" with the OLD
    and the NEW ``Probe`` at each schedule (fresh models every repetition, turns every
    ``BLOCK`` steps); per figure, the median over repetitions of the NEW probe's step time over
    the OLD one's, which ran in the same repetition (CPU time)."""
    import importlib
    import warnings

    import probe_overhead as po

    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    probes = {"new": importlib.import_module("actlab.probe").Probe,
              "old": importlib.import_module(f"{OLD_PACKAGE}.probe").Probe}
    schedules = ["probe every step", "probe every 10"]
    names = ["no probe"] + [f"{side} {v}" for v in schedules for side in ("old", "new")]

    def make(name: str, kind: str) -> Callable[[], None] | None:
        if name == "no probe":
            return po.make_variant(name, kind)
        side, variant = name.split(" ", 1)
        return po.make_variant(variant, kind, probe=probes[side])

    out: dict[str, dict[str, Any]] = {}
    for kind in [m.strip() for m in p["models"].split(",") if m.strip()]:
        r = po.bench(kind, p["inner"], p["probe_steps"], 5, names, make)
        for v in schedules:
            ro, rn = r[f"old {v}"]["cpu"]["ratios"], r[f"new {v}"]["cpu"]["ratios"]  # each over "no probe"
            _paired_figures(out, f"{kind}: {v} / no probe", [n / o for n, o in zip(rn, ro)],
                            {"old": ro, "new": rn}, "x")
    return out


def _sweep_paired_workload(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Both engines in one process: ``train_group`` of the same configurations, the two trees'
    calls taking turns (:func:`_couples`); per process, the median cost ratio new/old (CPU time)
    over couples of turns, the rates shown in model-steps per CPU second."""
    import importlib

    import sweep as sw

    trees = {side: (importlib.import_module(f"{pkg}.sweep.engine"), importlib.import_module(f"{pkg}.sweep.spec"))
             for side, pkg in (("old", OLD_PACKAGE), ("new", "actlab"))}

    def rate(side: str, steps: int) -> float:
        engine, spec = trees[side]
        return sw.time_batched(sw.configs(p["configs"], steps, spec.Config), spec.Record(every=50), p["threads"],
                               engine.train_group)[1]

    for side, (engine, _) in trees.items():
        engine.load_data("digits", "standardise", None)
        rate(side, 5)  # first-call costs (and the heap's growth to the size the timed calls need)
    rates: dict[str, list[float]] = {"old": [], "new": []}

    def cost(side: str) -> float:  # CPU seconds per model-step
        rates[side].append(rate(side, p["steps"]))
        return 1.0 / rates[side][-1]

    _, ratios = _couples(cost, p["inner"])
    out: dict[str, dict[str, Any]] = {}
    _paired_figures(out, "batched: model-steps per cpu-s", ratios, rates, "1/s", higher_is_better=True)
    return out


WORKLOADS: dict[str, Callable[[dict[str, Any]], dict[str, dict[str, Any]]]] = {
    "activations_paired": _activations_paired_workload,
    "probe_overhead_paired": _probe_paired_workload,
    "sweep_paired": _sweep_paired_workload,
    "probe_overhead": _probe_workload,
    "sweep": _sweep_workload,
    "activations": _activations_workload,
}


def _numba_target() -> dict[str, Any]:
    """numba's target CPU and features as its JIT will use them, and whether code it generates
    for a float32 loop holds AVX-512 (``zmm``) registers."""
    import numba
    import numpy as np
    from llvmlite import binding
    from numba.core import codegen, config

    # what numba's JIT codegen uses (numba.core.codegen.JITCPUCodegen._get_host_cpu_*)
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    name = config.CPU_NAME or binding.get_host_cpu_name()

    @numba.njit(cache=False)
    def axpy(a: Any, x: Any, y: Any) -> None:
        for i in range(x.shape[0]):
            y[i] = a * x[i] + y[i]

    x = np.ones(1024, dtype=np.float32)
    axpy(np.float32(2.0), x, x.copy())
    asm = axpy.inspect_asm(axpy.signatures[0])
    return {"cpu_name": name, "avx512_features": sorted(f[1:] for f in features.split(",") if f.startswith("+avx512")),
            "zmm_in_code": "zmm" in asm}


def _environment() -> dict[str, Any]:
    import importlib.util

    import actlab
    import torch

    old = importlib.util.find_spec(OLD_PACKAGE)
    return {"actlab": str(Path(actlab.__file__).resolve().parent), "torch": torch.__version__,
            "actlab_old": str(Path(old.origin).resolve().parent) if old is not None and old.origin else None,
            "torch_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def worker_main(bench: str, params: dict[str, Any], out: str) -> int:
    """One run: set the threads, do one workload (or the ISA check), write the JSON to ``out``."""
    import torch

    torch.set_num_threads(params["threads"])
    res: dict[str, Any] = {"env": _environment()}
    if bench == "isa":
        res["numba"] = _numba_target()
    else:
        t0 = time.perf_counter()
        try:
            res["figures"] = WORKLOADS[bench](params)
        except Exception as e:  # reported by the parent as one line (a bad --only names the valid choices)
            import traceback

            last = traceback.extract_tb(e.__traceback__)[-1]
            res["error"] = f"{type(e).__name__}: {e} (at {Path(last.filename).name}:{last.lineno})"
            Path(out).write_text(json.dumps(res))
            return 1
        res["seconds"] = time.perf_counter() - t0
    Path(out).write_text(json.dumps(res))
    return 0


# ---------------------------------------------------------------------------------------------
# Trees


def _git(*args: str) -> str:
    r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SideBySideError(f"git {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def cache_dir() -> Path:
    """Where exported revisions are kept: ``$XDG_CACHE_HOME/actlab/side_by_side`` (else ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actlab" / "side_by_side"


def export(rev: str, cache: Path) -> tuple[str, Path]:
    """``src/`` of revision ``rev`` as an exported tree under ``cache`` (reused when present): (sha, src)."""
    try:
        sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    except SideBySideError:
        raise SideBySideError(f"unknown revision {rev!r}: give a commit, tag or branch of {ROOT}") from None
    dest = cache / sha[:12]
    stamp = dest / "COMMIT"
    if stamp.is_file() and stamp.read_text().strip() == sha:
        return sha, dest / "src"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=cache))
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", sha, "src"],
                             capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(tmp, filter="data")
        (tmp / "COMMIT").write_text(sha + "\n")
        if dest.exists():  # an unfinished export (no stamp): replace it
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return sha, dest / "src"


def renamed_copy(src: Path) -> Path:
    """A copy of ``src/actlab`` as the package ``actlab_old`` (every whole word ``actlab`` in its
    Python files renamed), next to ``src``, so that one process imports both trees: the folder
    to put on ``PYTHONPATH`` (reused when present)."""
    import re

    dest = src.parent / "renamed"
    stamp = dest / "RENAMED"
    if stamp.is_file():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=".renamed-", dir=src.parent))
    try:
        shutil.copytree(src / "actlab", tmp / OLD_PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        for f in (tmp / OLD_PACKAGE).rglob("*.py"):
            f.write_text(re.sub(r"\bactlab\b", OLD_PACKAGE, f.read_text()))
        (tmp / "RENAMED").write_text(str(src) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------------
# Runs


#: Benchmarks whose runs get glibc's malloc tuned (benchmarks/_malloc.py), on both sides alike:
#: untuned, the engine's large buffers went back to the kernel after every train_group call and
#: came back as ~8k page faults per call, and its rate varied by ~10% between calls of one
#: process; tuned, the faults stop after the first call and the calls agree within ~2%.
MALLOC_TUNED = ("activations", "activations_paired", "sweep", "sweep_paired")


def worker_env(src: Path, isa: str, threads: int, bench: str, base: dict[str, str] | None = None,
               old: Path | None = None) -> dict[str, str]:
    """The environment of one run: ``PYTHONPATH`` at ``src`` (and ``old``, the renamed OLD tree of a
    paired run), the ISA variant, the thread count."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in ISA_KEYS}
    env.update(ISA_ENV[isa])
    env["PYTHONPATH"] = str(src) if old is None else os.pathsep.join([str(src), str(old)])
    for k in THREAD_ENV:
        env[k] = str(threads)
    if bench in MALLOC_TUNED:
        sys.path.insert(0, str(HERE))
        try:
            from _malloc import MALLOC_ENV
        finally:
            sys.path.remove(str(HERE))
        env.update(MALLOC_ENV)
    return env


def run_worker(src: Path, bench: str, isa: str, params: dict[str, Any], timeout: float,
               old: Path | None = None) -> dict[str, Any]:
    """One run of ``bench`` in a fresh process against the actlab under ``src`` (and, for a paired
    run, the OLD tree renamed under ``old``); its JSON result."""
    with tempfile.TemporaryDirectory(prefix="actlab-sbs-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", bench,
               "--worker-params", json.dumps(params), "--worker-out", str(out)]
        try:
            r = subprocess.run(cmd, env=worker_env(src, isa, params["threads"], bench, old=old), cwd=tmp,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SideBySideError(f"{bench} ({isa}) against {src} ran past {timeout:.0f} s") from None
        error = json.loads(out.read_text()).get("error") if out.is_file() else None
        if error:
            raise SideBySideError(f"{bench} ({isa}) against {src} failed: {error}")
        if r.returncode != 0 or not out.is_file():
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
            raise SideBySideError(f"{bench} ({isa}) against {src} failed (exit {r.returncode}):\n{tail}")
        res = json.loads(out.read_text())
    got = Path(res["env"]["actlab"])
    if got != (src / "actlab").resolve():
        raise SideBySideError(f"the run meant for {src} imported actlab from {got}")
    if old is not None and res["env"].get("actlab_old") != str((old / OLD_PACKAGE).resolve()):
        raise SideBySideError(f"the paired run found {OLD_PACKAGE} at {res['env'].get('actlab_old')}, not under {old}")
    want = TORCH_CAPABILITY[isa]
    if res["env"]["torch_capability"] != want:
        raise SideBySideError(f"--isa {isa}: torch runs its {res['env']['torch_capability']} kernels, not {want} "
                              f"(ATEN_CPU_CAPABILITY={ISA_ENV[isa]['ATEN_CPU_CAPABILITY']} did not take effect)")
    return res


def check_isa(isa: str, src: Path, run: Callable[..., dict[str, Any]], params: dict[str, Any],
              timeout: float) -> dict[str, Any]:
    """Show that the variant took effect (torch's capability is checked in ``run_worker``)."""
    res = run(src, "isa", isa, params, timeout)
    nb = res.get("numba", {})
    if isa == "avx2" and (nb.get("avx512_features") or nb.get("zmm_in_code")):
        raise SideBySideError(f"--isa avx2: numba still targets AVX-512 ({nb}); check NUMBA_CPU_NAME/NUMBA_CPU_FEATURES")
    return {"torch_capability": res["env"]["torch_capability"], "numba": nb,
            "env": {k: v for k, v in ISA_ENV[isa].items()}}


# ---------------------------------------------------------------------------------------------
# Statistics


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float] | None:
    """The narrowest order-statistic interval ``[x(k), x(n+1-k)]`` around the median whose coverage
    (``1 - 2 P(Binomial(n, 1/2) < k)``, no assumption on the distribution) is at least
    ``confidence``: (low, high, coverage), or None when even ``[min, max]`` covers less."""
    xs = sorted(values)
    n = len(xs)
    best = None
    tail = 0.0
    for k in range(1, n // 2 + 1):
        tail += math.comb(n, k - 1) / 2**n   # P(B <= k - 1)
        coverage = 1 - 2 * tail
        if coverage < confidence:
            break
        best = (xs[k - 1], xs[n - k], coverage)
    return best


def summarise(old: Sequence[float], new: Sequence[float], higher_is_better: bool, gated: bool,
              tolerance: float = TOLERANCE, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Paired cost ratios new/old (old/new for rates), their median, quartiles, interval, verdict."""
    ratios = [(o / n if higher_is_better else n / o) if o > 0 and n > 0 else math.nan for o, n in zip(old, new)]
    finite = [r for r in ratios if math.isfinite(r)]
    out: dict[str, Any] = {"old": list(old), "new": list(new), "ratios": ratios,
                           "old_median": statistics.median(old), "new_median": statistics.median(new)}
    if not finite:
        return {**out, "verdict": "inconclusive", "why": "no finite ratio"}
    q1, q2, q3 = statistics.quantiles(finite, n=4) if len(finite) > 1 else (finite[0],) * 3
    out.update(ratio_median=statistics.median(finite), ratio_q1=q1, ratio_q3=q3)
    ci = median_interval(finite, confidence)
    if ci is not None:
        out.update(ci_low=ci[0], ci_high=ci[1], ci_coverage=ci[2])
    if not gated:
        out["verdict"] = "not gated"
    elif ci is None:
        out.update(verdict="inconclusive", why=f"{len(finite)} ratios are too few for a {confidence:.0%} interval")
    elif ci[0] > 1 + tolerance:
        out["verdict"] = "slower"
    elif ci[1] <= 1 + tolerance:
        out["verdict"] = "not slower"
    else:
        out.update(verdict="inconclusive", why=f"the interval straddles {1 + tolerance:.2f}")
    return out


# ---------------------------------------------------------------------------------------------
# The comparison


def summarise_paired(runs: Sequence[dict[str, dict[str, Any]]], tolerance: float = TOLERANCE,
                     confidence: float = CONFIDENCE) -> dict[str, dict[str, Any]]:
    """Figures of paired runs (both trees in each process: the ``*_paired`` workloads): one cost
    ratio per process (``<figure> | new/old``), the interval and verdict over the processes; each
    side's values (``<figure> | old``, ``<figure> | new``) are shown."""
    figs: dict[str, dict[str, Any]] = {}
    tail = f"{PAIRED_SEP}new/old"
    for key in runs[0]:
        if not key.endswith(tail) or not all(key in r for r in runs):
            continue
        base = key[: -len(tail)]
        ratios = [r[key]["value"] for r in runs]
        olds = [r[f"{base}{PAIRED_SEP}old"]["value"] for r in runs]
        news = [r[f"{base}{PAIRED_SEP}new"]["value"] for r in runs]
        meta = runs[0][f"{base}{PAIRED_SEP}old"]
        f = summarise([1.0] * len(ratios), ratios, False, runs[0][key]["gated"], tolerance, confidence)
        f.update(old=olds, new=news, old_median=statistics.median(olds), new_median=statistics.median(news))
        figs[base] = {"unit": meta["unit"], "gated": runs[0][key]["gated"],
                      "higher_is_better": meta["higher_is_better"], **f}
    return figs


def compare(old_src: Path, new_src: Path, benchmarks: Sequence[str], isas: Sequence[str], reps: int,
            params: dict[str, Any], *, tolerance: float = TOLERANCE, confidence: float = CONFIDENCE,
            timeout: float = 600.0, run: Callable[..., dict[str, Any]] = run_worker,
            log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
            paired: Path | None = None) -> dict[str, Any]:
    """Run every benchmark ``reps`` times per side and variant, old and new alternating; summarise.

    With ``paired`` (the OLD tree renamed, see :func:`renamed_copy`), each benchmark runs both
    trees in each of ``reps`` processes instead (its ``*_paired`` workload)."""
    out: dict[str, Any] = {"isas": {}}
    for isa in isas:
        check = check_isa(isa, new_src, run, params, timeout)
        log(f"[{isa}] torch capability {check['torch_capability']}, numba target {check['numba'].get('cpu_name')} "
            f"(AVX-512 features: {len(check['numba'].get('avx512_features', []))}, "
            f"zmm in its code: {check['numba'].get('zmm_in_code')})")
        raw: dict[str, dict[str, list]] = {b: {"old": [], "new": [], "seconds": [], "paired": []} for b in benchmarks}
        for rep in range(reps):
            # old-new, then new-old: a load that rises or falls during a pair favours neither side
            order = (("old", old_src), ("new", new_src)) if rep % 2 == 0 else (("new", new_src), ("old", old_src))
            for b in benchmarks:
                if paired is not None:
                    res = run(new_src, f"{b}_paired", isa, params, timeout, old=paired)
                    raw[b]["paired"].append(res["figures"])
                    raw[b]["seconds"].append(res.get("seconds", math.nan))
                    log(f"[{isa}] run {rep + 1}/{reps} {b} (both trees in one process): done "
                        f"({raw[b]['seconds'][-1]:.0f} s of work)")
                    continue
                for side, src in order:
                    res = run(src, b, isa, params, timeout)
                    raw[b][side].append(res["figures"])
                    raw[b]["seconds"].append(res.get("seconds", math.nan))
                log(f"[{isa}] pair {rep + 1}/{reps} {b}: done ({sum(raw[b]['seconds'][-2:]):.0f} s of work)")
        benches: dict[str, Any] = {}
        for b in benchmarks:
            if raw[b]["paired"]:
                benches[b] = {"figures": summarise_paired(raw[b]["paired"], tolerance, confidence),
                              "only_old": [], "only_new": [], "paired": True}
                continue
            olds, news = raw[b]["old"], raw[b]["new"]
            common = [k for k in news[0] if all(k in f for f in olds + news)]
            figs = {}
            for k in common:
                meta = news[0][k]
                figs[k] = {"unit": meta["unit"], "gated": meta["gated"], "higher_is_better": meta["higher_is_better"],
                           **summarise([f[k]["value"] for f in olds], [f[k]["value"] for f in news],
                                       meta["higher_is_better"], meta["gated"], tolerance, confidence)}
            benches[b] = {"figures": figs,
                          "only_old": sorted(set(olds[0]) - set(common)), "only_new": sorted(set(news[0]) - set(common))}
        out["isas"][isa] = {"check": check, "benchmarks": benches}
    verdicts = [(isa, b, k, f["verdict"]) for isa, r in out["isas"].items() for b, br in r["benchmarks"].items()
                for k, f in br["figures"].items() if f["gated"]]
    out["slower"] = [f"{isa} {b} {k}" for isa, b, k, v in verdicts if v == "slower"]
    out["inconclusive"] = [f"{isa} {b} {k}" for isa, b, k, v in verdicts if v == "inconclusive"]
    out["verdict"] = "slower" if out["slower"] else "inconclusive" if out["inconclusive"] else "not slower"
    return out


EXIT = {"not slower": 0, "slower": 1, "inconclusive": 3}


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def _what(bench: str, s: dict[str, Any]) -> str:
    """What one run of ``bench`` times, in a line."""
    couples = max(1, (s["inner"] + 1) // 2)
    if bench == "probe_overhead":
        if s.get("paired"):
            return (f"SGD steps of {s['models']}, no probe and both trees' probes interleaved, {s['inner']} "
                    f"repetitions x {s['probe_steps']} steps per process, cpu time; ratio: new probe's step / old's")
        return (f"SGD steps of {s['models']}, {s['inner']} repetitions x {s['probe_steps']} steps per run, "
                f"cpu time")
    if bench == "sweep":
        what = f"train_group, {s['configs']} configs x {s['steps']} steps, record every 50"
        if s.get("paired"):
            return f"{what}, both trees in each process, the median ratio of {couples} couples of turns, cpu time"
        return f"{what}, median of {s['inner']}"
    if s.get("paired"):
        return (f"apply(), {s['size']} float32 elements, both trees in each process, the median ratio of "
                f"{couples} couples of turns per process, wall time")
    return f"apply(), {s['size']} float32 elements, median of {s['inner']} calls, wall time"


def print_table(res: dict[str, Any], file: Any = sys.stdout) -> None:
    m, s = res["machine"], res["settings"]
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p(f"old: {res['old']['rev']} ({res['old']['sha'][:12]})   new: {res['new']['rev']}"
      + (f" ({res['new']['sha'][:12]})" if res["new"].get("sha") else ""))
    p(f"machine: {m['cpu']}, {m['cpus']} cpus, AVX-512 {'yes' if m['avx512'] else 'no'}, python {m['python']}; "
      f"load average {m['load_avg'][0]:.1f} at start, {res['load_avg_end'][0]:.1f} at end")
    p(f"{s['reps']} " + ("processes per figure, both trees in each" if s.get("paired") else
                         "pairs of processes per figure, one tree in each, old/new alternating") + ", "
      f"{s['threads']} thread(s); cost ratio new/old (> 1: "
      f"new slower); interval >= {s['confidence']:.0%}; 'slower' beyond {1 + s['tolerance']:.2f}")
    for isa, r in res["isas"].items():
        c = r["check"]
        p(f"\n[{isa}] torch capability {c['torch_capability']}; numba target {c['numba'].get('cpu_name')}, "
          f"AVX-512 features {len(c['numba'].get('avx512_features', []))}, zmm in its code: {c['numba'].get('zmm_in_code')}")
        p(f"  {'figure':<36}{'old':>9}{'new':>9}{'ratio':>7}{'quartiles':>12}{'interval':>13}  verdict")
        for b, br in r["benchmarks"].items():
            p(f"{b}: {_what(b, s)}")
            for k, f in br["figures"].items():
                fmt = ".0f" if f["unit"] == "1/s" else ".3f"
                ci = f"{_num(f.get('ci_low'), '.3f')}-{_num(f.get('ci_high'), '.3f')}"
                q = f"{_num(f.get('ratio_q1'), '.2f')}-{_num(f.get('ratio_q3'), '.2f')}"
                p(f"  {k:<36}{_num(f['old_median'], fmt):>9}{_num(f['new_median'], fmt):>9}"
                  f"{_num(f.get('ratio_median'), '.3f'):>7}{q:>12}{ci:>13}  {f['verdict']}"
                  + (f" ({f['why']})" if f.get("why") else ""))
            for side in ("only_old", "only_new"):
                if br[side]:
                    p(f"  (not compared, {side.replace('_', ' in ')}: {', '.join(br[side])})")
    p(f"\nverdict: {res['verdict']} ({res['seconds']:.0f} s)" + (f"; slower: {', '.join(res['slower'])}" if res["slower"] else "")
      + (f"; inconclusive: {len(res['inconclusive'])} figure(s)" if res["inconclusive"] else ""))


def main(argv: list[str] | None = None, run: Callable[..., dict[str, Any]] = run_worker) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=DEFAULT_BASE, help=f"the OLD revision (default {DEFAULT_BASE})")
    ap.add_argument("--new", default=None, help="the NEW revision (default: this working tree, uncommitted changes too)")
    ap.add_argument("--benchmarks", default=",".join(BENCHMARKS), help=f"comma-separated: {', '.join(BENCHMARKS)}")
    ap.add_argument("--isa", default="both", choices=("avx512", "avx2", "both"))
    ap.add_argument("--reps", type=int, default=5, help="processes (with --separate: pairs of processes) per benchmark and ISA (>= 5 for a verdict)")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE, help="a cost ratio up to 1 + this is not slower")
    ap.add_argument("--confidence", type=float, default=CONFIDENCE, help="least coverage of the ratio's interval")
    ap.add_argument("--cache-dir", default=None, help=f"where revisions are exported (default {cache_dir()})")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    ap.add_argument("--separate", action="store_true",
                    help="one process per tree (the old method) instead of both trees in each process")
    for k, v in DEFAULTS.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v, help=f"(default {v!r})")
    add_output_options(ap)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-params", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    a = parse(ap, argv)
    if a.worker:
        return worker_main(a.worker, json.loads(a.worker_params), a.worker_out)

    benchmarks = [b.strip() for b in a.benchmarks.split(",") if b.strip()]
    for b in benchmarks:
        if b not in BENCHMARKS:
            ap.error(f"unknown benchmark {b!r}; choose from {', '.join(BENCHMARKS)}")
    if a.reps < 1:
        ap.error(f"--reps must be >= 1, got {a.reps}")
    if a.threads < 1:
        ap.error(f"--threads must be >= 1, got {a.threads}")
    if not 0 < a.confidence < 1:
        ap.error(f"--confidence must lie in (0, 1), got {a.confidence}")
    mach = machine()
    isas = ["avx512", "avx2"] if a.isa == "both" else [a.isa]
    if "avx512" in isas and not mach["avx512"]:
        if a.isa == "avx512":
            ap.error(f"--isa avx512: this CPU ({mach['cpu']}) has no AVX-512; choose avx2")
        isas = ["avx2"]
        print(f"(this CPU, {mach['cpu']}, has no AVX-512: only the avx2 variant runs)", file=sys.stderr)
    params = {k: getattr(a, k) for k in DEFAULTS}
    cache = (Path(a.cache_dir) if a.cache_dir else cache_dir()).resolve()  # workers run elsewhere
    try:
        old_sha, old_src = export(a.base, cache)
        if a.new is None:
            new = {"rev": f"working tree {ROOT}", "sha": None, "src": str(ROOT / "src")}
            new_src = ROOT / "src"
        else:
            new_sha, new_src = export(a.new, cache)
            new = {"rev": a.new, "sha": new_sha, "src": str(new_src)}
        paired = None if a.separate else renamed_copy(old_src)
        t0 = time.perf_counter()
        res = compare(old_src, new_src, benchmarks, isas, a.reps, params, tolerance=a.tolerance,
                      confidence=a.confidence, timeout=a.timeout, run=run, paired=paired)
    except SideBySideError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = {"old": {"rev": a.base, "sha": old_sha, "src": str(old_src)}, "new": new, "machine": mach,
           "load_avg_end": list(os.getloadavg()), "seconds": time.perf_counter() - t0,
           "settings": {"reps": a.reps, "tolerance": a.tolerance, "confidence": a.confidence,
                        "paired": paired is not None, **params}, **res}
    print_table(res, file=sys.stderr if a.json else sys.stdout)
    code = finish(a, res)  # 2 if the JSON could not be written (the result kept in a named temp file)
    return code or EXIT[res["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
