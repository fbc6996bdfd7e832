"""The Ray backend: chunks of configurations as Ray tasks; the driver writes the store.

Ray is optional (``pip install actlab[ray]``) and imported only when this backend runs.
Each task trains one chunk with the same batched engine as the local backend, so results are
identical to a local run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from actlab.lab.train import TrainResult
from actlab.sweep.engine import train_chunk
from actlab.sweep.spec import Config, Record


def _ray():
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError("the Ray backend needs ray: pip install 'actlab[ray]'") from None
    return ray


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
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False,
                 log_to_driver=False)
    task = ray.remote(num_cpus=cpus_per_task, max_retries=2)(train_chunk)
    pending = [task.remote(list(c), record, threads or cpus_per_task) for c in chunks]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            yield ray.get(ref)
