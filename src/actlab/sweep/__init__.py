"""Sweeps at scale: grids of configurations trained as one batched computation, kept in a
resumable SQLite store, run locally (optionally over processes) or on Ray.

Example::

    >>> from actlab.sweep import load_spec, run_sweep
    >>> store = run_sweep(load_spec("examples/sweep_small.yaml"), "sweep.db")
    >>> store.to_dataframe().groupby("activation").test_error.mean()
"""

from actlab.sweep.engine import (
    ModelResult,
    group_configs,
    init_params,
    lab_model,
    load_data,
    reference_model,
    train_configs,
    train_group,
    train_reference,
)
from actlab.sweep.spec import (
    AXES,
    INIT_SCHEMES,
    METRICS,
    OPTIMISERS,
    Config,
    Record,
    SpecError,
    SweepSpec,
    load_spec,
    parse_spec,
    spec_from_flags,
)

__all__ = [
    "AXES",
    "INIT_SCHEMES",
    "METRICS",
    "OPTIMISERS",
    "Config",
    "ModelResult",
    "Record",
    "SpecError",
    "SweepSpec",
    "group_configs",
    "init_params",
    "lab_model",
    "load_data",
    "load_spec",
    "parse_spec",
    "reference_model",
    "spec_from_flags",
    "train_configs",
    "train_group",
    "train_reference",
]


def __getattr__(name: str):  # store and backends import lazily (sqlite, pandas, ray)
    if name in ("Store", "open_store"):
        from actlab.sweep import store

        return getattr(store, name)
    if name in ("run_sweep", "run_configs"):
        from actlab.sweep.backends import local

        return getattr(local, name)
    raise AttributeError(name)
