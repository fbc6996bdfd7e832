"""Update ratio: how far an optimizer step moved a layer's parameters, relative to their size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot

#: The probe estimates the ratio on at most this many entries per parameter tensor, taken at a
#: fixed stride (all of a smaller tensor): copying every weight each time would cost more than
#: all the other statistics together.
UPDATE_SAMPLE = 4096


def sample(p: Tensor) -> Tensor:
    """At most ~:data:`UPDATE_SAMPLE` entries of ``p`` at a fixed stride (all of a small tensor)."""
    v = p.detach().reshape(-1)
    stride = -(-v.numel() // UPDATE_SAMPLE)
    return v if stride == 1 else v[::stride]


def update_ratio(before: Sequence[Tensor], after: Sequence[Tensor]) -> Tensor:
    """``||w_after - w_before|| / ||w_before||`` over all of a layer's parameter tensors together."""
    d2 = sum(torch.linalg.vector_norm((a.detach() - b.detach()).double()).square() for a, b in zip(after, before))
    w2 = sum(torch.linalg.vector_norm(b.detach().double()).square() for b in before)
    return torch.as_tensor(d2).sqrt() / torch.as_tensor(w2).sqrt()


QUANTITY = Quantity(
    order=70,
    key="update_ratio",
    doc="||w_after - w_before|| / ||w_before|| of each layer's parameters over an optimizer step",
    schedule="update",
    target="update",
    fields=(
        Field("weight_norm", "norm of the layer's parameters before the update (steps where the ratio is measured)"),
        Field("update_ratio", "||w_after - w_before|| / ||w_before|| over the optimizer step"),
    ),
    reduce=update_ratio,
    plot=series_plot("update_ratio", "update / weight norm", log=True, only=lambda r: r.update_ratio > 0),
)
