"""Parameter-gradient norm of a layer: weights and bias together.

The one definition, used by the probe, the lab and the sweep engine: the 2-norm of the gradients
of *all* the layer's own trainable parameter tensors taken together (a Linear layer's weight and
bias; an LSTM's four tensors), ``sqrt(sum_t ||dL/dt||^2)``.  Its RMS divides by the number of
those entries, so layers of different sizes compare.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot


def param_grad_norm(*grads: Tensor | None, model_dims: int = 0) -> Tensor:
    """``sqrt(sum over tensors of ||g||^2)`` of a layer's parameter gradients (``None``: skipped),
    in the gradients' dtype.

    Args:
        grads: the gradients of every trainable parameter of the layer (weight, bias, ...).
        model_dims: leading dimensions kept (the sweep engine's stacked models: ``1``).
    """
    norms = [torch.linalg.vector_norm(g.detach().reshape(*g.shape[:model_dims], -1), dim=-1)
             for g in grads if g is not None]
    if not norms:
        raise ValueError("param_grad_norm needs at least one gradient, got none")
    # the norm of the tensors' norms is sqrt(sum ||g||^2): two reductions where squares, sums and
    # adds took five kernels (the sweep engine calls this on every record step)
    if len(norms) == 1:
        return norms[0]
    if len({n.dtype for n in norms}) > 1:  # a half-precision weight beside a float32 bias
        norms = [n.double() for n in norms]
    return torch.linalg.vector_norm(torch.stack(norms), dim=0)


def param_grad_rms(*grads: Tensor | None, model_dims: int = 0) -> Tensor:
    """:func:`param_grad_norm` over the square root of the number of parameter entries."""
    n = sum(math.prod(g.shape[model_dims:]) for g in grads if g is not None)
    return param_grad_norm(*grads, model_dims=model_dims) / math.sqrt(max(n, 1))


QUANTITY = Quantity(
    order=60,
    key="grad_norm",
    doc="norm of the gradients of each layer's own parameters, weights and bias together",
    schedule="step",
    target="param_grads",
    fields=(
        Field("param_grad_norm", "norm of the gradients of the layer's own parameters, weights and bias together"),
        Field("param_grad_rms", "param_grad_norm / sqrt(number of parameter entries): compares layers of any size"),
    ),
    reduce=param_grad_norm,
    plot=series_plot("param_grad_norm", "||grad|| of the layer's parameters (weights + bias)", log=True,
                     only=lambda r: r.param_grad_norm > 0),
)

__all__ = ["QUANTITY", "param_grad_norm", "param_grad_rms"]
