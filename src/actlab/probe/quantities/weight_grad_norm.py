"""Weight-gradient norm of a layer: its weight matrix or kernel alone, without the bias.

This is the gradient mean-field theory predicts (``||dL/dW^l|| ~ ||delta^l|| ||h^{l-1}||``, see
:mod:`actlab.theory.meanfield`), so every comparison of a measured gradient with the theory
reads this quantity, not :mod:`.param_grad_norm` (weights and bias together): where the bias
gradient ``sum_b delta^l_b`` dominates (ReLU nets at init, tiny weights) the two part by
decades.

A layer's *weights* are its trainable parameter tensors of two or more dimensions
(:func:`is_weight`): a Linear layer's ``weight``, a Conv kernel, an RNN's ``weight_ih`` and
``weight_hh``.  Biases, normalisation scales and learnable slopes (one dimension) are not; a
layer without weights records NaN.
"""

from __future__ import annotations

from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity, series_plot
from actlab.probe.quantities.param_grad_norm import param_grad_norm


def is_weight(param: Tensor, model_dims: int = 0) -> bool:
    """Whether a parameter tensor is a weight (a matrix or kernel: two or more dimensions
    beyond the ``model_dims`` leading ones)."""
    return param.dim() - model_dims >= 2


def weight_grad_norm(*weight_grads: Tensor | None, model_dims: int = 0) -> Tensor:
    """``sqrt(sum over tensors of ||g||^2)`` of a layer's *weight* gradients (``None``: skipped).

    Args:
        weight_grads: the gradients of the layer's weights (:func:`is_weight`), no bias.
        model_dims: leading dimensions kept (the sweep engine's stacked models: ``1``).

    Raises:
        ValueError: a gradient given is not a weight's (fewer than two dimensions), or none is.
    """
    got = [g for g in weight_grads if g is not None]
    bad = [tuple(g.shape) for g in got if not is_weight(g, model_dims)]
    if bad:
        raise ValueError(f"weight_grad_norm takes weight gradients (2 or more dimensions after {model_dims} "
                         f"model dimension(s)), got one of shape {bad[0]}; pass a bias to param_grad_norm")
    if not got:
        raise ValueError("weight_grad_norm needs at least one weight gradient, got none")
    return param_grad_norm(*got, model_dims=model_dims)


QUANTITY = Quantity(
    order=61,
    key="weight_grad_norm",
    doc="norm of the gradients of each layer's weight matrices or kernels, without the bias (what mean-field "
        "theory predicts)",
    schedule="step",
    target="param_grads",
    fields=(Field("weight_grad_norm", "norm of the gradients of the layer's weights (2+ dimensional parameters), "
                  "without the bias: the gradient mean-field theory predicts"),),
    reduce=weight_grad_norm,
    plot=series_plot("weight_grad_norm", "||grad|| of the layer's weights (no bias)", log=True,
                     only=lambda r: r.weight_grad_norm > 0),
)

__all__ = ["QUANTITY", "is_weight", "weight_grad_norm"]
