"""Run a block with a given number of torch intra-op threads, restoring the previous setting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """``n`` threads inside the block (``None``: leave as is).  On a shared CPU, oversubscribed
    threads spin against each other: small batched matmuls run several times faster on one."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
