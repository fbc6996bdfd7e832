"""The local backend, and :func:`run_sweep`, the driver every backend shares.

``workers == 1`` trains each chunk in this process (the batched engine shards it over the
cores with threads); ``workers > 1`` sends chunks to a ``spawn`` process pool, each worker with
its share of the cores (one thread each when there are as many workers as cores; more
oversubscribe them, many times slower), in about two
chunks per worker.  Each worker starts its own Python and torch, so on a machine with few cores
``workers == 1`` is as fast or faster: the batched engine already uses every core in one process.
Results come back to the driver, which writes each chunk to the store in one transaction as soon
as it finishes.

Workers die with their driver: each runs in its own process group (a Ctrl-C in the terminal
reaches the driver alone, which then stops them) and, on Linux, asks the kernel to kill it when
the driver dies (``PR_SET_PDEATHSIG``), so even ``kill -9`` of the driver leaves no orphan.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from actlab._progress import Progress
from actlab._workers import init_worker, kill_pool
from actlab.lab.train import TrainResult
from actlab.sweep.backends import stopping
from actlab.sweep.engine import default_threads, group_configs, train_chunk, train_group
from actlab.sweep.spec import Config, Record, SweepSpec
from actlab.sweep.store import Store

# run_sweep reports ``progress(fraction, "k of n models")`` (actlab._progress), also within a
# chunk as its steps complete.

DEFAULT_CHUNK = 64

def _worker_init() -> None:
    """Run in each worker at start (:func:`actlab._workers.init_worker`): its own process group,
    death with the parent, one thread."""
    init_worker(1)


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes now (the driver was interrupted)."""
    kill_pool(pool)
    # The pool's semaphore tracker would warn about "leaked" semaphores when the driver exits
    # straight after an interrupt; they die with it, so stop the tracker quietly too.
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    pid = getattr(getattr(tracker, "_resource_tracker", None), "_pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_local(chunks: Sequence[Sequence[Config]], record: Record, *, workers: int = 1,
              threads: int | None = None, progress: Callable[[int], None] | None = None,
              ) -> Iterator[list[TrainResult]]:
    """Yield each chunk's results as it finishes (in this process, or over ``workers`` processes)."""
    if workers <= 1:
        for chunk in chunks:
            steps = chunk[0].steps
            cb = (lambda s, n=len(chunk), steps=steps: progress(n * s / steps)) if progress else None  # type: ignore[misc]
            res = train_group(chunk, record, threads=threads, progress=cb)
            for r in res:
                r.losses = []
            yield res
        return
    # The cores shared out: workers x threads never exceeds them (more oversubscribes them, and
    # OpenMP's spinning barriers then run many times slower).
    per = threads or max(1, default_threads() // workers)
    workers = min(workers, len(chunks))  # a worker with no chunk would only cost its start-up
    if workers == 0:
        return
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init)
    stop = lambda: _kill_pool(pool)  # noqa: E731
    try:
        with stopping(stop):
            todo = {pool.submit(train_chunk, list(c), record, per) for c in chunks}
            while todo:
                done, todo = wait(todo, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
    except BaseException:
        stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_sweep(spec: SweepSpec, store: Store | str | Path, *, backend: str = "local", workers: int = 1,
              address: str | None = None, chunk_size: int = DEFAULT_CHUNK, threads: int | None = None,
              progress: Progress | None = None) -> Store:
    """Run every pending configuration of ``spec`` and write the results to ``store``.

    Resumable: configurations already finished in the store are skipped, so running the same
    spec again after a crash trains only what is missing.

    Args:
        spec: the sweep.
        store: a :class:`Store` or the path of its SQLite file.
        backend: ``"local"`` or ``"ray"``.
        workers: local processes (``backend="local"``).
        address: Ray cluster address (``backend="ray"``; ``None`` starts or joins a local one).
        chunk_size: most models trained as one stacked computation.
        threads: threads per chunk (default: the cores this process may use; one per worker process).
        progress: ``progress(fraction, message)`` (:mod:`actlab._progress`), over models.

    Returns:
        the store.
    """
    st = store if isinstance(store, Store) else Store(store)
    h = st.add_sweep(spec)
    todo = st.pending(h)
    total = len(st.configs(h))
    done = total - len(todo)
    def report(k: float) -> None:
        if progress:
            progress(k / total if total else 1.0, f"{k:g} of {total} models")

    report(done)
    if backend == "local" and workers > 1:
        # About two chunks per worker, so none idles while another trains a large one (a chunk is
        # what a worker trains at once; with one chunk each, a deep chunk kept its worker busy
        # long after a shallow one's had finished).
        chunk_size = min(chunk_size, max(1, -(-len(todo) // (2 * workers))))
    chunks = group_configs(todo, chunk_size)
    inner = (lambda k: report(done + k)) if progress else None  # type: ignore[misc]
    if backend == "local":
        it = run_local(chunks, spec.record, workers=workers, threads=threads, progress=inner)
    elif backend == "ray":
        from actlab.sweep.backends.ray import run_ray

        it = run_ray(chunks, spec.record, address=address, threads=threads)
    else:
        raise ValueError(f"unknown backend {backend!r}; valid: local, ray")
    for res in it:
        st.write_results(res)
        done += len(res)
        report(done)
    return st

