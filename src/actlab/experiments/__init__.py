"""The lab's experiments, one file per classic claim.

Every module in this package that defines a module-level ``EXPERIMENT`` (an instance of an
:class:`~actlab.experiments.base.Experiment` subclass) is found automatically, so adding a
claim means adding one file. ``order`` sets its place in the report.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import lru_cache

from actlab.experiments.base import Experiment


class UnknownExperiment(ValueError):
    """An experiment name that is not in the lab; the message lists the valid ones."""


@lru_cache(maxsize=1)
def _all() -> dict[str, Experiment]:
    found: list[Experiment] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        exp = getattr(mod, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            found.append(exp)
    found.sort(key=lambda e: (getattr(e, "order", 100), e.name))
    out: dict[str, Experiment] = {}
    for e in found:
        if e.name in out:
            raise RuntimeError(f"experiment name {e.name!r} is declared twice")
        out[e.name] = e
    return out


def experiments() -> list[Experiment]:
    """Every experiment, in report order."""
    return list(_all().values())


def experiment_names() -> list[str]:
    return list(_all())


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (``-`` and ``_`` are the same)."""
    key = name.strip().lower().replace("-", "_")
    table = _all()
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownExperiment(f"unknown experiment {name!r}.{hint} Valid experiments: {', '.join(table)}")


__all__ = ["Experiment", "UnknownExperiment", "experiment_names", "experiments", "get_experiment"]
