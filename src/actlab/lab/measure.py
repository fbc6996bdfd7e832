"""Per-layer measurements the lab's experiments share: gradient norms and unit derivatives.

These are the statistics the probe (:mod:`actlab.probe`) will collect during training; the lab's
experiments measure them once, at a given moment (at init, after training), on a fixed batch, so
they live here as two small functions that the probe can later take over.

Example::

    >>> m = MLP(64, 10, depth=3, width=32, activation="sigmoid")
    >>> g = layer_gradients(m, x, y)
    >>> g.weight_norms          # ||dL/dW_l||_F for each Linear layer, input to output
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab.activations.torch import Activation


@dataclass
class LayerGradients:
    """What one backward pass shows, per hidden layer (output layer last in ``weight_norms``).

    Attributes:
        weight_norms: Frobenius norm of ``dL/dW`` of every Linear layer, input to output.
        pre: each hidden layer's pre-activations ``z_l`` ``(N, units)``.
        derivative: ``f'(z_l)`` of each hidden layer's activation ``(N, units)`` (elementwise only).
        loss: the loss the gradients are of.
    """

    weight_norms: list[float]
    pre: list[Tensor]
    derivative: list[Tensor]
    loss: float


def activation_derivative(act: Activation, pre: Tensor) -> Tensor:
    """``f'(z)`` of a catalog activation module at ``z``, from the spec's analytic derivative."""
    p = dict(act.fixed)
    for name in act.spec.learnable:
        w = getattr(act, name).detach()
        p[name] = w.view(-1, *([1] * (pre.dim() - 2))) if pre.dim() >= 2 and w.numel() > 1 else w
    p["training"] = False
    with torch.no_grad():
        return act.spec.derivative(pre, act.spec.forward(pre, p), p)


def layer_gradients(model: nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy") -> LayerGradients:
    """One forward/backward pass of ``model`` (an :class:`~actlab.lab.models.MLP`) on ``(x, y)``.

    The mean loss over the batch is differentiated; the model's ``.grad`` fields are left as they
    were (the gradients are taken with :func:`torch.autograd.grad`), so it can run mid-training.

    Args:
        model: an MLP (needs ``forward_all``, ``linear_layers`` and ``activations``).
        x: inputs ``(N, in_features)``.
        y: class labels ``(N,)`` for ``"cross_entropy"``, targets for ``"mse"``.
        loss: ``"cross_entropy"`` (default) or ``"mse"``.
    """
    layers = model.linear_layers()
    out, pre, _ = model.forward_all(x)
    value = F.cross_entropy(out, y) if loss == "cross_entropy" else F.mse_loss(out, y)
    grads = torch.autograd.grad(value, [lin.weight for lin in layers])
    acts = model.activations()
    derivs = [activation_derivative(a, z.detach()) for a, z in zip(acts, pre) if a.spec.elementwise]
    return LayerGradients(
        weight_norms=[float(g.double().norm()) for g in grads],
        pre=[z.detach() for z in pre],
        derivative=derivs,
        loss=float(value.detach()),
    )


__all__ = ["LayerGradients", "activation_derivative", "layer_gradients"]
