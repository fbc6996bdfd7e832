"""The one thread-control context: run a block with ``n`` torch intra-op threads.

actlab's models are small (width up to a few hundred): one thread is as fast as several, and on
a shared, busy machine oversubscribed threads spin-wait on each other and run many times slower.
Everything that pins threads (the lab's experiments, theory's Monte Carlo, the sweep engine and
its workers) uses :func:`torch_threads`, so the previous setting always comes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave the setting as it is),
    then restore the previous setting."""
    if n is None:
        yield
        return
    import torch  # here, not at import: the CLI loads this module without paying for torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
