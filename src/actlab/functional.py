"""Functional ops for every catalog activation, generated from the registry.

``actlab.functional.relu(x)``, ``actlab.functional.leaky_relu(x, negative_slope=0.1)``;
NumPy arrays and numbers work too. Backward is the catalog's analytic derivative.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from actlab.activations.registry import get, specs
from actlab.activations.torch import apply

__all__: list[str] = ["activation"]


def activation(name: str, x: Any, **params: Any) -> Any:
    """Apply the catalog activation ``name`` to ``x`` (tensor, array or number)."""
    return apply(get(name), x, **params)


def _make(name: str) -> Callable[..., Any]:
    spec = get(name)
    fn = partial(apply, spec)
    fn.__doc__ = f"{spec.title}: {spec.formula}. {spec.note}"  # type: ignore[attr-defined]
    return fn


for _s in specs():
    globals()[_s.name] = _make(_s.name)
    __all__.append(_s.name)
