"""TensorBoard export writes the probe's per-layer scalars (skipped without tensorboard)."""

from __future__ import annotations

import pytest
from probe_nets import mlp, train
from torch import nn

from actlab.probe import Probe

pytestmark = pytest.mark.integration
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_tensorboard_scalars_match_records(tmp_path):
    model = mlp(nn.Sigmoid, depth=4)
    with Probe(model) as probe:
        train(model, steps=6)
    logdir = probe.to_tensorboard(tmp_path / "tb")
    acc = event_accumulator.EventAccumulator(str(logdir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    recs = [r for r in probe.records() if r.std == r.std]  # layers with activation statistics
    assert recs, "the probe recorded no activation statistics"
    r = recs[-1]
    tag = f"std/{r.layer}"
    assert tag in tags
    events = {e.step: e.value for e in acc.Scalars(tag)}
    assert events[r.step] == pytest.approx(r.std, rel=1e-6)
