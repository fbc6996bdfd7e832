"""Output nonlinearities: forward matches torch, Jacobian and vjp match autograd (float64)."""

from __future__ import annotations

import pytest
import torch

from actlab.activations import ActivationError, names
from actlab.activations.outputs import OUTPUTS, get_output


@pytest.mark.parametrize("spec", OUTPUTS, ids=lambda s: s.name)
def test_jacobian_and_vjp_match_autograd(spec):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, dtype=torch.float64, generator=g) * 3
    want = torch.stack([torch.autograd.functional.jacobian(spec.forward, row) for row in z])
    assert torch.allclose(spec.jacobian(z), want, atol=1e-12)
    grad = torch.randn(5, 4, dtype=torch.float64, generator=g)
    zz = z.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(spec.forward(zz), zz, grad)
    assert torch.allclose(spec.vjp(grad, spec.forward(z)), auto, atol=1e-12)


def test_softmax_with_cross_entropy_gives_the_residual():
    z = torch.tensor([[4.0, -3.0, 0.5]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1])
    torch.nn.functional.cross_entropy(z, y).backward()
    p = get_output("softmax").forward(z.detach())
    assert torch.allclose(z.grad, p - torch.nn.functional.one_hot(y, 3).double(), atol=1e-12)


def test_outputs_stay_out_of_the_hidden_layer_catalog():
    assert {"softmax", "log_softmax"}.isdisjoint(names())
    with pytest.raises(ActivationError, match="Valid: sigmoid, softmax, log_softmax"):
        get_output("softmx")
