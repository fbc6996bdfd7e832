"""The Ray backend: chunks of configurations as Ray tasks; the driver writes the store.

Ray is optional (``pip install actlab[ray]``) and imported only when this backend runs.
Each task trains one chunk with the same batched engine as the local backend, so results are
identical to a local run.

Stopping: while tasks run, :func:`actlab.sweep.backends.stop_workers` cancels them with
``force=True`` (Ray kills the worker processes running them), shuts Ray down, and then kills
whatever Ray started from this process and is still alive (on Linux): a shut-down Ray on a
loaded machine left its runtime-env agent running for minutes.  If the driver is killed
outright (``kill -9``), Ray's raylet and GCS die with it (a parent-death signal), its workers
when their raylet does, and a reaper (:mod:`actlab._procs`) kills what is left, its agents; on a
cluster joined with ``address``, Ray kills the tasks of a job whose driver died.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from actlab._procs import descendants, kill, start_reaper
from actlab.lab.train import TrainResult
from actlab.sweep.backends import stopping
from actlab.sweep.engine import train_chunk
from actlab.sweep.spec import Config, Record

STOP_WAIT_S = 1.0
"""The most an interrupted driver waits for Ray to cancel and shut down (the rest of the 2 s it
has to stop is left for the store count and the exit)."""

RAY_PROCESSES = b"ray"
"""What the command line of every process Ray starts contains (raylet, GCS, ``ray::`` agents and
workers): the processes below the driver that a stop kills."""

_POLL_S = 0.2
"""``ray.wait`` returns at least this often, so a signal handler runs promptly."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError("the Ray backend needs ray: pip install 'actlab[ray]'") from None
    return ray


CONNECT_TIMEOUT_S = 5.0
"""How long to try to reach a cluster's address before saying it cannot be reached."""


def _check_reachable(address: str | None) -> None:
    """Raise ``ConnectionError`` if ``address`` (``host:port`` or ``ray://host:port``) does not
    accept a TCP connection: given one that does not, ``ray.init`` retries for minutes."""
    if not address or address in ("auto", "local"):
        return
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT, auto, local)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {address!r} ({e.strerror or e})") from None


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` (``None``: the running instance, or a new local one),
    unless this process is connected already.

    ``ray.init`` replaces the process's SIGTERM handler; a driver that handles SIGTERM itself
    connects first and installs its handler after.
    """
    import logging

    ray = _ray()
    if not ray.is_initialized():
        _check_reachable(address)
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        start_reaper(RAY_PROCESSES)  # what ray.init started below this process goes when it goes


def run_ray(chunks: Sequence[Sequence[Config]], record: Record, *, address: str | None = None,
            threads: int | None = None, cpus_per_task: int = 1) -> Iterator[list[TrainResult]]:
    """Yield each chunk's results as its Ray task finishes.

    Args:
        chunks: the chunks (see :func:`actlab.sweep.engine.group_configs`).
        record: what to record.
        address: the cluster to join (``None``: the running instance, or a new local one).
        threads: threads per task (default ``cpus_per_task``).
        cpus_per_task: CPUs Ray reserves for each task.
    """
    ray = _ray()
    connect(address)
    task = ray.remote(num_cpus=cpus_per_task, max_retries=2)(train_chunk)
    pending = [task.remote(list(c), record, threads or cpus_per_task) for c in chunks]

    def stop() -> None:
        # From a signal handler, the main thread may be inside Ray: do the work on a thread and
        # give it STOP_WAIT_S; then kill whatever Ray started here and is still alive.
        def work() -> None:
            for ref in list(pending):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - finished or already cancelled
                    pass
            ray.shutdown()

        started_here = descendants(os.getpid(), named=RAY_PROCESSES)
        t = threading.Thread(target=work, name="actlab-ray-stop", daemon=True)
        t.start()
        t.join(STOP_WAIT_S)
        kill(started_here | descendants(os.getpid(), named=RAY_PROCESSES))

    with stopping(stop):
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=_POLL_S)
            for ref in done:
                yield ray.get(ref)
