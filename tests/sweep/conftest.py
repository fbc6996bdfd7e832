from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These tests check equality, not speed: one intra-op thread keeps them fast on a shared
    # machine, where OpenMP barriers across busy cores cost more than the arithmetic.
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
