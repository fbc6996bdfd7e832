"""The local backend, and :func:`run_sweep`, the driver every backend shares.

``workers == 1`` trains each chunk in this process (the batched engine shards it over the
cores with threads); ``workers > 1`` sends chunks to a ``spawn`` process pool, each worker
with ``cores // workers`` threads.  Results come back to the driver, which writes each chunk to
the store in one transaction as soon as it finishes.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from actlab.sweep.engine import ModelResult, default_threads, group_configs, train_chunk, train_group
from actlab.sweep.spec import Config, Record, SweepSpec
from actlab.sweep.store import Store

Progress = Callable[[int, int], None]
"""``progress(models_done, models_total)``; also called within a chunk as steps complete."""

DEFAULT_CHUNK = 64


def run_local(chunks: Sequence[Sequence[Config]], record: Record, *, workers: int = 1,
              threads: int | None = None, progress: Callable[[int], None] | None = None,
              ) -> Iterator[list[ModelResult]]:
    """Yield each chunk's results as it finishes (in this process, or over ``workers`` processes)."""
    if workers <= 1:
        for chunk in chunks:
            steps = chunk[0].steps
            cb = (lambda s, n=len(chunk), steps=steps: progress(n * s / steps)) if progress else None  # type: ignore[misc]
            res = train_group(chunk, record, threads=threads, progress=cb)
            for r in res:
                r.losses = None
            yield res
        return
    per = threads or max(1, default_threads() // workers)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        todo = {pool.submit(train_chunk, list(c), record, per) for c in chunks}
        while todo:
            done, todo = wait(todo, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()


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
        threads: threads per chunk (default: the cores this process may use, or a share of them).
        progress: ``progress(done, total)`` in models.

    Returns:
        the store.
    """
    st = store if isinstance(store, Store) else Store(store)
    h = st.add_sweep(spec)
    todo = st.pending(h)
    total = len(st.configs(h))
    done = total - len(todo)
    if progress:
        progress(done, total)
    chunks = group_configs(todo, chunk_size)
    inner = (lambda k: progress(done + k, total)) if progress else None  # type: ignore[misc]
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
        if progress:
            progress(done, total)
    return st

