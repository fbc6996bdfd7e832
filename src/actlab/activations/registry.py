"""Name lookup over the catalog, and the map the probe uses from torch's own functions (the map from
modules, which knows actlab's own module class, is :func:`actlab.activations.torch.spec_for_module`)."""

from __future__ import annotations

import difflib
from typing import Any, Callable

from actlab.activations.catalog import CATALOG
from actlab.activations.spec import ActivationError, ActivationSpec

REGISTRY: dict[str, ActivationSpec] = {s.name: s for s in CATALOG}
_LOOKUP: dict[str, ActivationSpec] = {}
for _s in CATALOG:
    for _n in (_s.name, *_s.aliases):
        _key = _n.lower().replace("-", "_")
        if _key in _LOOKUP:
            raise RuntimeError(f"activation name {_n!r} is declared twice")
        _LOOKUP[_key] = _s


def names() -> list[str]:
    """Canonical names of every catalog activation, in catalog order."""
    return list(REGISTRY)


def specs() -> list[ActivationSpec]:
    return list(CATALOG)


def get(name: str | ActivationSpec) -> ActivationSpec:
    """The spec for ``name`` (or an alias, any case, ``-`` or ``_``).

    Raises:
        ActivationError: naming the unknown name, the closest match and every valid name.
    """
    if isinstance(name, ActivationSpec):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key in _LOOKUP:
        return _LOOKUP[key]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=1, cutoff=0.5)
    hint = f" Did you mean {_LOOKUP[close[0]].name!r}?" if close else ""
    raise ActivationError(f"unknown activation {name!r}.{hint} Valid names: {', '.join(names())}")


def spec_for_function(fn: Callable[..., Any]) -> ActivationSpec | None:
    """Map a torch function (``F.gelu``, ``torch.relu``...) to its spec, if it is an activation."""
    return _FUNCTIONS.get(fn)


_FUNCTIONS: dict[Any, ActivationSpec] = {}
for _s in CATALOG:
    for _f in _s.torch_functions:
        _FUNCTIONS.setdefault(_f, _s)
