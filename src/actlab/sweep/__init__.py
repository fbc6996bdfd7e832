"""Sweeps at scale: grids of configurations trained as one batched computation, kept in a
resumable SQLite store, run locally (optionally over processes) or on Ray.

Example::

    >>> from actlab.sweep import load_spec, run_sweep
    >>> store = run_sweep(load_spec("examples/sweep_small.yaml"), "sweep.db")
    >>> store.to_dataframe().groupby("activation").test_error.mean()
"""

from actlab.lab.train import TrainResult  # the one result type of lab.train and the engine
from actlab.sweep.backends.local import run_sweep  # pandas and ray are imported only where used
from actlab.sweep.engine import (
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
from actlab.sweep.store import Store, open_store

__all__ = [
    "AXES",
    "INIT_SCHEMES",
    "METRICS",
    "OPTIMISERS",
    "Config",
    "Record",
    "SpecError",
    "Store",
    "SweepSpec",
    "TrainResult",
    "group_configs",
    "init_params",
    "lab_model",
    "load_data",
    "load_spec",
    "open_store",
    "parse_spec",
    "reference_model",
    "run_sweep",
    "spec_from_flags",
    "train_configs",
    "train_group",
    "train_reference",
]
