"""The Lightning callback runs the probe during ``trainer.fit`` (skipped without lightning)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from probe_nets import digits, mlp
from torch import nn

pytestmark = pytest.mark.integration
L = pytest.importorskip("lightning")


class Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(nn.Sigmoid, depth=8)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)  # calls an inner module, not self(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_callback_records_steps_and_finds_vanishing_gradients(tmp_path):
    from actlab.probe.lightning import ProbeCallback

    torch.manual_seed(0)
    x, y = digits()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:640], y[:640]), batch_size=64)
    cb = ProbeCallback(every=2, print_summary=False)
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Module(), loader)
        findings = cb.probe.findings()
    assert cb.probe.steps() == list(range(0, 20, 2))
    assert any(f.kind == "vanishing_gradients" for f in findings)
    assert all(r.param_grad_norm > 0 for r in cb.probe.records() if r.kind == "parametrised")
    assert [s for s, _ in cb.probe.read().losses] == list(range(20))  # every batch's loss, for the loss trend
