"""A PyTorch Lightning callback that runs the probe during ``trainer.fit`` (needs ``lightning``).

Example::

    >>> from actlab.probe.lightning import ProbeCallback
    >>> cb = ProbeCallback(every=10)
    >>> trainer = lightning.Trainer(callbacks=[cb], max_epochs=3)
    >>> trainer.fit(model, loader)
    >>> cb.probe.findings()
"""

from __future__ import annotations

from typing import Any

import torch

from actlab.probe.probe import Probe

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - the older package name
    try:
        from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]
    except ImportError as e:
        raise ImportError("actlab.probe.lightning needs PyTorch Lightning: pip install 'actlab[lightning]'") from e


class ProbeCallback(Callback):
    """Attach a :class:`~actlab.probe.Probe` to the LightningModule for the whole fit.

    A step is one training batch (``trainer.global_step``), recorded on the probe's schedule: the
    recording starts at ``on_train_batch_start`` and the forward statistics close at
    ``on_before_backward``, so it works whether ``training_step`` calls ``self(x)`` or an inner
    module.  At the end of fit the hooks come off and the summary is printed.

    Args:
        print_summary: print :meth:`Probe.summary` at the end of fit. Default: ``True``.
        **probe_kw: the :class:`Probe` settings (``every``, ``window``, ``saturation``...).
    """

    def __init__(self, *, print_summary: bool = True, **probe_kw: Any) -> None:
        super().__init__()
        self.print_summary = print_summary
        self.probe_kw = probe_kw
        self.probe: Probe | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.probe is None:
            self.probe = Probe(pl_module, auto_step=False, **self.probe_kw)
        self.probe.attach()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.probe is not None:
            self.probe._drive_begin(int(trainer.global_step))

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        if self.probe is not None:
            self.probe._drive_end(loss)
            if isinstance(loss, torch.Tensor) and loss.dim() == 0:
                self.probe.record_loss(loss)  # the loss-trend finding (plateau, divergence)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.probe is not None:
            self.probe._drive_end(None)  # manual optimisation without backward: close the forward

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.probe is None:
            return
        self.probe.detach()
        if self.print_summary and trainer.is_global_zero:
            self.probe.summary()
