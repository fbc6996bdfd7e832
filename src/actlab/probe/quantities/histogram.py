"""Pre-activation histogram: how a layer's pre-activations spread over the activation's input axis.

Drawn over the activation's saturated regions it shows *where* on f a layer works: a sigmoid
layer whose mass sits beyond |x| = 4 is saturated, a ReLU layer with everything below 0 is dead.
``BINS`` equal bins over ``[-r, r]``, with ``r`` = max|x| clamped to ``[1, LIMIT]``, found on the
device (no sync): values beyond ``r`` (only when max|x| > ``LIMIT``) are counted in the end bins,
NaNs in none.

Off by default (``Quantity.default=False``): a histogram costs a few kernels per activation
layer, and only a picture needs it.  Ask for it with ``Probe(model, quantities=[..., "histogram"])``
or :meth:`~actlab.probe.Probe.enable`; it is taken on the ``update`` schedule, and the probe keeps
the latest one per layer (:attr:`~actlab.probe.records.ProbeRecords.histograms`), not one per
step.  The playground's histograms (:mod:`actlab.play`) call :func:`histogram` too.
"""

from __future__ import annotations

import torch
from torch import Tensor

from actlab.probe.quantities.base import Quantity

BINS = 40
"""Bins of a histogram."""

LIMIT = 60.0
"""The widest half-range, ``|x|``: beyond it every activation in the catalog is flat to float32."""


def histogram(x: Tensor, bins: int = BINS, limit: float = LIMIT) -> tuple[Tensor, Tensor]:
    """Counts of the entries of ``x`` (NaNs left out) in ``bins`` equal bins over ``[-r, r]``.

    Args:
        x: pre-activations, any shape (every entry counts).
        bins: number of bins. Default: :data:`BINS`
        limit: the largest ``r``. Default: :data:`LIMIT`

    Returns:
        ``(r, counts)``: ``r = clamp(max|x|, 1, limit)`` as a 0-d float tensor and the int64 counts
        (``bins``,), both on ``x``'s device; bin ``i`` covers ``[-r + 2ri/bins, -r + 2r(i+1)/bins)``,
        the last one closed.  NaNs are not counted; an empty or all-NaN ``x`` gives ``r = 1`` and
        zero counts.
    """
    v = x.detach().reshape(-1).float()
    v = v[~torch.isnan(v)]
    if v.numel() == 0:
        return torch.ones((), device=x.device), torch.zeros(bins, dtype=torch.int64, device=x.device)
    r = v.abs().amax().clamp(1.0, limit)
    idx = ((v.clamp(-limit, limit) + r) * (bins / (2.0 * r))).floor_().clamp_(0, bins - 1).long()
    return r, torch.bincount(idx, minlength=bins)


QUANTITY = Quantity(
    order=200,
    key="histogram",
    doc="histogram of each activation layer's pre-activations (the latest per layer; off by default)",
    schedule="update",
    target="pre_activation",
    fields=(),
    reduce=histogram,
    probe="generic",
    default=False,
)
