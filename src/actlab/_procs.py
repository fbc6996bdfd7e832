"""The processes below this one, and a reaper that kills them when this one dies, however it dies.

Why: a Ray instance started by a sweep runs agents and workers below the driver.  Ray kills its
raylet and GCS with the driver (a parent-death signal), but on a loaded machine its agents kept
running for minutes after a ``kill -9`` of the driver (they try to report the raylet's death to
a GCS that is gone).  The reaper, a separate small process, watches the driver and kills what
was below it once the driver is gone.

Linux only (it reads /proc); elsewhere :func:`descendants` is empty and no reaper starts.  This
module imports nothing from actlab and runs as a script (``python _procs.py PID NAME``), so the
reaper starts in a few milliseconds without torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

__all__ = ["descendants", "kill", "start_reaper"]


def _parents() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process, from /proc (empty where there is none)."""
    out: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                out[int(name)] = (int(fields[1]), fields[0].decode())
            except (OSError, IndexError, ValueError):
                pass
    return out


def cmdline(pid: int) -> bytes:
    """The command line of ``pid`` (arguments separated by NUL bytes; empty if gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def descendants(pid: int, *, named: bytes = b"") -> set[int]:
    """The live processes below ``pid`` whose command line contains ``named``."""
    table = _parents()
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, (pp, state) in table.items() if pp in frontier and state != "Z"} - out
        out |= frontier
    return {p for p in out if named in cmdline(p)} if named else out


def kill(pids: set[int]) -> None:
    """SIGKILL each of ``pids`` (never this process); one already gone is skipped."""
    for p in pids - {os.getpid()}:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    entry = _parents().get(pid)
    return entry is not None and entry[1] != "Z"


def _watch(pid: int, named: bytes, every: float = 0.5) -> None:
    """Until ``pid`` is gone, remember its descendants named ``named``; then kill them (and
    whatever they started)."""
    seen: set[int] = set()
    while _alive(pid):
        seen = {p for p in seen if _alive(p)} | descendants(pid, named=named)
        time.sleep(every)
    for p in set(seen):
        seen |= descendants(p)
    kill(seen)


def start_reaper(named: bytes) -> subprocess.Popen | None:
    """Start a reaper for this process's descendants named ``named`` (``None`` off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    # Its own session: a Ctrl-C in the terminal must not stop the reaper before it has reaped.
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), str(os.getpid()), named.decode()],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


if __name__ == "__main__":
    _watch(int(sys.argv[1]), sys.argv[2].encode())
