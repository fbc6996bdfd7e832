"""actlab: see, compare and fix how nonlinearities shape the training of neural networks.

The names below are loaded on first use (PEP 562 ``__getattr__``), so ``import actlab`` and the
command line's ``--help`` do not pay for importing torch; ``actlab.Probe`` and ``actlab.nn`` work
as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "functional": ("actlab.functional", None),
    "nn": ("actlab.nn", None),
    "theory": ("actlab.theory", None),
    "ActivationError": ("actlab.activations", "ActivationError"),
    "ActivationSpec": ("actlab.activations", "ActivationSpec"),
    "apply": ("actlab.activations", "apply"),
    "get": ("actlab.activations", "get"),
    "names": ("actlab.activations", "names"),
    "specs": ("actlab.activations", "specs"),
    "Probe": ("actlab.probe", "Probe"),
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from actlab import functional, nn, theory
    from actlab.activations import ActivationError, ActivationSpec, apply, get, names, specs
    from actlab.probe import Probe


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'actlab' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["ActivationError", "ActivationSpec", "Probe", "apply", "functional", "get", "names", "nn", "specs",
           "__version__"]
