"""The catalog of nonlinearities: specs, lookup, functional ops and modules.

Example::

    >>> import torch
    >>> from actlab.activations import get, apply
    >>> spec = get("leaky_relu")
    >>> apply(spec, torch.tensor([-2.0, 3.0]), negative_slope=0.1)
    tensor([-0.2000,  3.0000])
"""

from actlab.activations.registry import REGISTRY, get, names, spec_for_function, specs
from actlab.activations.spec import ActivationError, ActivationSpec, HyperParam, Kink
from actlab.activations.torch import Activation, apply, autograd_function, spec_for_module

__all__ = [
    "REGISTRY",
    "Activation",
    "ActivationError",
    "ActivationSpec",
    "HyperParam",
    "Kink",
    "apply",
    "autograd_function",
    "get",
    "names",
    "spec_for_function",
    "spec_for_module",
    "specs",
]
