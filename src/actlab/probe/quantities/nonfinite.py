"""Non-finite locator: which layer's output or gradient first held a NaN or Inf, and at which step.

The forward side is judged from the sum of the output (NaN or Inf when any element is, or when
finite values overflow it), computed anyway for the moments; the backward side from the
parameter- and output-gradient norms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity


def nonfinite(t: Tensor) -> Tensor:
    """Whether ``t`` holds a NaN or an Inf (0-d bool tensor, no sync)."""
    return ~torch.isfinite(t.detach().sum())


def first_nonfinite(records: Sequence[Any]) -> tuple[int, Any, str] | None:
    """``(step, record, "forward" | "backward")`` of the first non-finite value, or ``None``.

    In the forward pass the first one is the layer nearest the input; in backward, the one
    nearest the output (gradients flow from the loss).
    """
    bad = [r for r in records if r.nonfinite or r.grad_nonfinite]
    if not bad:
        return None
    step = min(r.step for r in bad)
    at = [r for r in bad if r.step == step]
    fw = [r for r in at if r.nonfinite]
    if fw:
        return step, min(fw, key=lambda r: r.order), "forward"
    return step, max(at, key=lambda r: r.order), "backward"


QUANTITY = Quantity(
    order=80,
    key="nonfinite",
    doc="whether a layer's output or gradients held a NaN or Inf",
    schedule="step",
    target="activation",
    fields=(
        Field("nonfinite", "the output had a NaN or Inf", bool, False),
        Field("grad_nonfinite", "a parameter or output gradient had a NaN or Inf", bool, False),
    ),
    reduce=nonfinite,
)
