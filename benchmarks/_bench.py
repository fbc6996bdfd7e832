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
import sys
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["add_output_options", "finish", "parse", "progress", "tables"]


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
