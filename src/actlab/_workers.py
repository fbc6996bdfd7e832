"""The one home of worker-process hygiene: how a pool worker starts and how a driver stops it.

Every process pool in actlab (the sweep's local backend, the lab's parallel experiments) starts
its workers with :func:`init_worker` and, when interrupted, stops them with :func:`kill_pool`:

* a worker runs in its own process group, so the terminal's Ctrl-C reaches the driver alone,
  which then stops the workers itself (no half-dead pool printing tracebacks);
* on Linux it asks the kernel to kill it when the driver dies (``PR_SET_PDEATHSIG``), so even
  ``kill -9`` of the driver leaves no orphan;
* it runs torch with one intra-op thread: several threads per worker oversubscribe the cores
  (many times slower when the workers fill the cores).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

__all__ = ["init_worker", "kill_pool", "usable_cores"]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def init_worker(threads: int = 1) -> None:
    """Run in each pool worker at start: its own process group, death with the parent, ``threads``
    torch threads, SIGINT ignored (the driver decides what an interrupt means)."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the driver died before prctl took effect
            os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(max(1, int(threads)))


def kill_pool(pool: Any) -> None:
    """Kill the worker processes of a ``ProcessPoolExecutor`` now (its driver was interrupted)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
