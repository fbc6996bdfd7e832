"""The thread-control context the theory, the lab and the experiments run under."""

from __future__ import annotations

import torch

from actlab._threads import torch_threads


def test_torch_threads_sets_and_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
