"""The pre-activation histogram: its reduction against numpy, and the probe taking it only when asked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from actlab.probe import Probe
from actlab.probe.quantities.histogram import BINS, LIMIT, histogram


def test_counts_match_numpy_over_the_clamped_range():
    torch.manual_seed(0)
    x = torch.randn(64, 32) * 3.0
    r, counts = histogram(x)
    rr = float(x.abs().max())
    assert float(r) == pytest.approx(rr)
    want, _ = np.histogram(x.numpy().astype(np.float64), bins=BINS, range=(-rr, rr))
    # float32 edges against numpy's float64 ones may put a value on an edge into the next bin
    assert counts.sum() == x.numel() and np.abs(counts.numpy() - want).sum() <= 2
    # small values: r is at least 1, so a vanishing layer shows as a spike in the middle
    r, counts = histogram(torch.full((10,), 0.01))
    assert float(r) == 1.0 and counts[BINS // 2] == 10


def test_nan_is_left_out_and_values_beyond_the_limit_land_in_the_end_bins():
    x = torch.tensor([math.nan, math.inf, -math.inf, 1e6, 0.0, -1e6])
    r, counts = histogram(x)
    assert float(r) == LIMIT and counts.sum() == 5
    assert counts[0] == 2 and counts[-1] == 2 and counts[BINS // 2] == 1
    r, counts = histogram(torch.full((3,), math.nan))
    assert float(r) == 1.0 and counts.sum() == 0 and len(counts) == BINS


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def _train(model: nn.Module, probe: Probe | None, steps: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, 6, generator=g)
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()


def test_the_probe_takes_it_only_when_asked_and_keeps_the_latest_per_layer():
    model = _net()
    with Probe(model) as probe:
        _train(model, probe, 3)
    assert probe.read().histograms == {}
    model = _net()
    with Probe(model, update_every=2).enable("histogram") as probe:
        _train(model, probe, 5)
    hs = probe.read().histograms
    assert list(hs) == ["1", "3"]  # the activation layers, in forward order
    assert all(h.step == 4 for h in hs.values())  # steps 0, 2, 4 measured; the latest kept
    assert all(h.counts.sum() == 32 * 16 and len(h.edges) == BINS + 1 for h in hs.values())
    # the numbers are the reduction's on the layer's input (the last step's batch)
    model = _net()
    with Probe(model, update_every=1, quantities=["histogram"]) as probe:
        x = torch.randn(32, 6)
        model(x).sum().backward()
    r, counts = histogram(model[0](x))
    got = probe.read().histograms["1"]
    assert got.r == pytest.approx(float(r)) and np.array_equal(got.counts, counts.numpy())
    with pytest.raises(ValueError, match="unknown quantity 'histo'.*histogram"):
        probe.enable("histo")


def test_it_leaves_training_unchanged():
    a, b = _net(), _net()
    with Probe(a, update_every=1).enable("histogram"):
        _train(a, None, 4)
    with Probe(b):
        _train(b, None, 4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
