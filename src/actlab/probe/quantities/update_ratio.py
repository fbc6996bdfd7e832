"""Update ratio: how far an optimizer step moved a layer's parameters, relative to their size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot

#: The probe estimates the ratio on at most this many entries per parameter tensor (all of a
#: smaller tensor): copying every weight each time would cost more than all the other statistics
#: together.
UPDATE_SAMPLE = 4096
#: Consecutive entries per piece of the sample (one 64-byte cache line of float32).  Single
#: entries at a fixed stride touch every cache line of a large tensor, as much memory traffic as
#: copying it whole; runs of this length touch ``1 / stride`` of it.
SAMPLE_RUN = 16

_INDEX: dict[tuple[int, str], Tensor] = {}


def sample(p: Tensor) -> Tensor:
    """At most :data:`UPDATE_SAMPLE` entries of ``p``: a flat view of a small tensor, else a copy.

    A larger tensor gives ``UPDATE_SAMPLE // SAMPLE_RUN`` runs of :data:`SAMPLE_RUN` consecutive
    entries (flattened order), their starts spread evenly from the first entry to the last.  The
    starts drift across the columns of a weight matrix, so no input feature (an image's always-dark
    border pixels, say) fills the sample.
    """
    v = p.detach().reshape(-1)
    idx = sample_index(v.numel(), v.device)
    return v if idx is None else v.index_select(0, idx)


def sample_index(n: int, device: torch.device | str = "cpu") -> Tensor | None:
    """The flat positions :func:`sample` takes from a tensor of ``n`` entries (``None``: all of them)."""
    if n <= UPDATE_SAMPLE:
        return None
    key = (n, str(device))
    idx = _INDEX.get(key)
    if idx is None:
        starts = sample_starts(n)
        idx = _INDEX[key] = (starts[:, None] + torch.arange(SAMPLE_RUN)).reshape(-1).to(device)
    return idx


def sample_starts(n: int) -> Tensor:
    """Where the runs of :data:`SAMPLE_RUN` entries that :func:`sample` takes from ``n > UPDATE_SAMPLE``
    entries start (int64, CPU)."""
    runs = UPDATE_SAMPLE // SAMPLE_RUN
    return torch.linspace(0, n - SAMPLE_RUN, runs, dtype=torch.float64).round().long()


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
