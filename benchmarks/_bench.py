"""What every benchmark under ``benchmarks/`` shares: its output options, its progress lines and
its exit rule, so ``--json`` means the same as in ``actlab`` itself.

- ``--json``: the results as one strict JSON document on stdout (NaN and inf as ``null``,
  :mod:`actlab._json`); the human tables go to stderr instead.
- ``--json-out PATH``: also write that document to ``PATH`` (checked before the work starts,
  written atomically, :mod:`actlab._io`).
- progress lines always go to stderr, so a long run is never silent and never pollutes the JSON.
- a benchmark with targets is a check: a missed target prints ``targets failed: ...`` on stderr
  and exits 1.

Use::

    from _bench import add_output_options, finish, parse, progress, tables

    ap = argparse.ArgumentParser(...)
    add_output_options(ap)
    a = parse(ap, argv)
    with tables(a):
        ...print the table...
    return finish(a, result, failed=[...])
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
from pathlib import Path
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["add_output_options", "describe_machine", "finish", "machine", "parse", "progress", "tables"]


def machine() -> dict[str, Any]:
    """CPU model, core count, AVX-512 flag (from /proc/cpuinfo where there is one), load average, and
    the instruction set torch's kernels dispatch to here (``ATEN_CPU_CAPABILITY`` can lower it) when
    torch is imported: every figure is given with the machine it was measured on."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = val.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(val.split())
    except OSError:  # not Linux: the flag is unknown, so the avx512 variant is not offered
        pass
    model = model or platform.processor() or platform.machine()
    out = {"cpu": model, "cpus": os.cpu_count(), "avx512": "avx512f" in flags,
           "python": platform.python_version(), "load_avg": list(os.getloadavg())}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    out["numba_cpu"] = os.environ.get("NUMBA_CPU_NAME") or "host"  # the probe's fused kernels target this
    return out


def describe_machine(m: dict[str, Any] | None = None) -> str:
    """One line for the tables: ``machine: CPU, N cpus, AVX-512 yes, torch kernels AVX512; load ...``."""
    m = m or machine()
    cap = f", torch kernels {m['torch_capability']}" if "torch_capability" in m else ""
    cap += f", numba target {m['numba_cpu']}" if "numba_cpu" in m else ""
    return (f"machine: {m['cpu']}, {m['cpus']} cpus, AVX-512 {'yes' if m['avx512'] else 'no'}{cap}, "
            f"python {m['python']}; load average {m['load_avg'][0]:.1f}")


def add_output_options(ap: argparse.ArgumentParser) -> None:
    """Add ``--json`` and ``--json-out PATH`` to a benchmark's parser."""
    ap.add_argument("--json", action="store_true",
                    help="print the results as one JSON document to stdout (tables go to stderr)")
    ap.add_argument("--json-out", metavar="PATH", default=None, help="also write the results as JSON to PATH")


def parse(ap: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and check ``--json-out`` before any work (a bad path exits 2 naming it)."""
    a = ap.parse_args(argv)
    if a.json_out is not None:
        from actlab._io import OutputError, check_output

        try:
            check_output(a.json_out, option="--json-out")
        except OutputError as e:
            ap.error(str(e))
    return a


def progress(message: str) -> None:
    """One progress line on stderr, flushed at once."""
    print(f"  {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def tables(a: argparse.Namespace) -> Iterator[None]:
    """Inside the block, ``print`` goes to stdout, or with ``--json`` to stderr (stdout carries the
    JSON alone)."""
    if not a.json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def finish(a: argparse.Namespace, result: Any, failed: Sequence[str] = ()) -> int:
    """Print / write ``result`` as ``--json`` / ``--json-out`` ask; return the exit code: 1 if a
    target in ``failed`` was missed (named on stderr), else 0."""
    from actlab._json import dumps

    doc = dumps(result, indent=1)
    if a.json_out is not None:
        from actlab._io import OutputError, write_atomic

        try:
            write_atomic(a.json_out, doc)
        except OutputError as e:  # the result is kept in a named temp file; say where
            print(f"error: {e}", file=sys.stderr)
            return 2
    if a.json:
        print(doc, flush=True)
    if failed:
        print(f"targets failed: {', '.join(failed)}", file=sys.stderr, flush=True)
        return 1
    return 0
