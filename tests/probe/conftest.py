import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The probe tests train small nets; on a shared 2-core machine two torch threads fight
    # other jobs and run 20x slower than one.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
