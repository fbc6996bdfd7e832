"""Output-gradient norm: the norm of the loss gradient with respect to a layer's output."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot


def output_grad_norm(g: Tensor, dims: Any = None) -> Tensor:
    """``||dL/dy||_2`` over ``dims`` (all elements, the whole batch, by default).

    Args:
        g: the gradient of the loss with respect to the layer's output ``y``.
        dims: the dimensions reduced; the sweep engine passes its non-model dimensions.
    """
    v = g.detach().double()
    return v.square().sum().sqrt() if dims is None else v.square().sum(dims).sqrt()


QUANTITY = Quantity(
    order=50,
    key="out_grad_norm",
    doc="norm of the loss gradient with respect to each layer's output",
    schedule="out_grads",
    target="output_grad",
    fields=(Field("out_grad_norm", "norm of the loss gradient with respect to the layer's output"),),
    reduce=output_grad_norm,
    plot=series_plot("out_grad_norm", "||dL/d output||", log=True, only=lambda r: r.out_grad_norm > 0),
)
