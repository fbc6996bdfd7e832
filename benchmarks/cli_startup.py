"""Time ``actlab --help`` and every sub-command's ``--help`` (target: under 1 s each).

Each is run as a fresh process, as a user would (so the time includes Python's start and every
import), several times; the median is reported.  The CLI imports torch only inside commands, so
help never pays for it.  Exits 1 when a median misses the target.

Usage::

    python benchmarks/cli_startup.py [--repeats 5] [--target 1.0] [--json] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _bench import add_output_options, finish, parse, progress, tables

RUN = [sys.executable, "-c", "from actlab.cli import main; main()"]


def commands() -> list[list[str]]:
    """Every command path of the CLI, from the app itself (so a new command is timed unasked)."""
    import typer

    from actlab.cli import app

    root = typer.main.get_command(app)
    out: list[list[str]] = [[]]

    def walk(cmd, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            out.append([*path, name])
            walk(sub, [*path, name])

    walk(root, [])
    return out


def time_help(path: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each run; CPU time moves less on a busy machine."""
    walls, cpus = [], []
    for _ in range(repeats):
        c0 = _child_cpu()
        t0 = time.perf_counter()
        r = subprocess.run([*RUN, *path, "--help"], capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(_child_cpu() - c0)
        if r.returncode != 0:
            raise SystemExit(f"`actlab {' '.join(path)} --help` failed (exit {r.returncode}): {r.stderr.strip()}")
    return walls, cpus


def _child_cpu() -> float:
    import resource

    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each command (median reported)")
    ap.add_argument("--target", type=float, default=1.0, help="seconds a --help may take")
    add_output_options(ap)
    a = parse(ap, argv)
    paths = commands()
    rows = []
    for i, path in enumerate(paths):
        label = " ".join(["actlab", *path, "--help"])
        progress(f"[{i + 1}/{len(paths)}] {label}")
        ts, cs = time_help(path, a.repeats)
        rows.append({"command": label, "median_s": statistics.median(ts), "max_s": max(ts),
                     "cpu_median_s": statistics.median(cs), "pass": statistics.median(ts) < a.target})
    # Reference: the interpreter alone, and the import of torch the help avoids.
    base = statistics.median(_time([sys.executable, "-c", "pass"]) for _ in range(a.repeats))
    torch_s = statistics.median(_time([sys.executable, "-c", "import torch"]) for _ in range(a.repeats))
    with tables(a):
        print(f"{'command':<40}{'median s':>10}{'max s':>8}{'cpu s':>8}  target: median < {a.target:g} s")
        for r in rows:
            print(f"{r['command']:<40}{r['median_s']:>10.3f}{r['max_s']:>8.3f}{r['cpu_median_s']:>8.3f}  "
                  f"{'PASS' if r['pass'] else 'FAIL'}")
        print(f"(python start alone: {base:.3f} s; `import torch` alone: {torch_s:.3f} s)")
    return finish(a, {"target_s": a.target, "python_start_s": base, "import_torch_s": torch_s, "rows": rows},
                  failed=[r["command"] for r in rows if not r["pass"]])


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
