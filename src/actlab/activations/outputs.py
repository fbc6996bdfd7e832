"""Output nonlinearities: the maps from a network's last pre-activation to its prediction.

Softmax and log-softmax are not elementwise (each output depends on every logit), so they are
declared here, apart from the elementwise catalog that hidden-layer code (probe, engine,
playground lists) loops over; that code never sees them. Each entry carries its forward and its
Jacobian-vector product in closed form, side by side; tests hold both against autograd.

Example::

    >>> import torch
    >>> from actlab.activations.outputs import get_output
    >>> sm = get_output("softmax")
    >>> sm.forward(torch.tensor([[0.0, 0.0]]))
    tensor([[0.5000, 0.5000]])
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from actlab.activations.spec import ActivationError


@dataclass(frozen=True)
class OutputSpec:
    """One output nonlinearity over the last dimension.

    Args:
        name: canonical name (``"softmax"``).
        title: display name.
        formula: LaTeX of the map.
        forward: ``z -> y`` over the last dimension.
        vjp: ``(grad, y) -> grad @ J(z)`` with ``J = dy/dz``, from the output alone.
        pairs_with: the loss whose gradient through this output is the residual ``y_hat - y``.
    """

    name: str
    title: str
    formula: str
    forward: Callable[[Tensor], Tensor]
    vjp: Callable[[Tensor, Tensor], Tensor]
    pairs_with: str

    def jacobian(self, z: Tensor) -> Tensor:
        """``dy/dz`` for each row of ``z``: shape ``(..., k, k)``, entry ``[i, j] = dy_i / dz_j``."""
        y = self.forward(z)
        k = z.shape[-1]
        eye = torch.eye(k, dtype=z.dtype, device=z.device).expand(*z.shape[:-1], k, k)
        # the vjp of the unit row vector e_j is e_j J, row j of J
        return self.vjp(eye, y.unsqueeze(-2).expand_as(eye))


def _sigmoid_vjp(grad: Tensor, y: Tensor) -> Tensor:
    return grad * y * (1 - y)  # elementwise: J = diag(y (1 - y))


def _softmax_vjp(grad: Tensor, y: Tensor) -> Tensor:
    # J = diag(y) - y y^T, so g J = y * (g - <g, y>)
    return y * (grad - (grad * y).sum(-1, keepdim=True))


def _log_softmax_vjp(grad: Tensor, y: Tensor) -> Tensor:
    # y = log softmax(z): J = I - 1 softmax(z)^T, so g J = g - (sum g) softmax(z), softmax = exp(y)
    return grad - grad.sum(-1, keepdim=True) * y.exp()


OUTPUTS: tuple[OutputSpec, ...] = (
    OutputSpec("sigmoid", "Sigmoid (binary output)", r"\hat y = \frac{1}{1 + e^{-z}}", torch.sigmoid, _sigmoid_vjp,
               "bce"),
    OutputSpec("softmax", "Softmax", r"\hat y_i = \frac{e^{z_i}}{\sum_j e^{z_j}}",
               lambda z: torch.softmax(z, dim=-1), _softmax_vjp, "ce"),
    OutputSpec("log_softmax", "Log-softmax", r"\log \hat y_i = z_i - \log \sum_j e^{z_j}",
               lambda z: torch.log_softmax(z, dim=-1), _log_softmax_vjp, "nll"),
)
OUTPUT_REGISTRY: dict[str, OutputSpec] = {o.name: o for o in OUTPUTS}


def get_output(name: str) -> OutputSpec:
    """The output nonlinearity called ``name``; an unknown name raises naming the valid ones."""
    key = str(name).strip().lower().replace("-", "_")
    if key in OUTPUT_REGISTRY:
        return OUTPUT_REGISTRY[key]
    close = difflib.get_close_matches(key, list(OUTPUT_REGISTRY), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ActivationError(f"unknown output nonlinearity {name!r}.{hint} Valid: {', '.join(OUTPUT_REGISTRY)}")
