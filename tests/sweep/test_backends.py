"""Backends: a process pool and Ray give the same results as the local backend."""

from __future__ import annotations

import pandas as pd
import pytest

from actlab.sweep.backends.local import run_sweep
from actlab.sweep.spec import parse_spec

SPEC = {"name": "b", "axes": {"activation": ["relu", "tanh"], "depth": [1, 2], "width": 8, "lr": 0.1,
                              "seed": [0, 1], "steps": 15, "batch_size": 16},
        "record": {"every": 5}}
COLS = ["status", "train_loss", "test_loss", "test_error", "steps_to_batch_loss", "inactive"]


def _frame(st, spec):
    return st.to_dataframe(spec.hash).set_index("config_hash").sort_index()[COLS]


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    spec = parse_spec(SPEC)
    st = run_sweep(spec, tmp_path_factory.mktemp("local") / "l.db", chunk_size=4, threads=1)
    return spec, _frame(st, spec), st.records_dataframe(spec.hash).sort_values(["config_hash", "step"])


def test_process_pool_equals_local(tmp_path, local_result):
    spec, local, _ = local_result
    st = run_sweep(spec, tmp_path / "p.db", workers=2, chunk_size=4, threads=1)
    pd.testing.assert_frame_equal(_frame(st, spec), local)


@pytest.mark.integration
def test_ray_equals_local(tmp_path, local_result):
    ray = pytest.importorskip("ray", reason="ray is not installed (optional extra actlab[ray])")
    spec, local, local_rec = local_result
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        st = run_sweep(spec, tmp_path / "r.db", backend="ray", chunk_size=4, threads=1)
        pd.testing.assert_frame_equal(_frame(st, spec), local)
        rec = st.records_dataframe(spec.hash).sort_values(["config_hash", "step"])
        pd.testing.assert_frame_equal(rec.reset_index(drop=True), local_rec.reset_index(drop=True))
    finally:
        ray.shutdown()


def test_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="valid: local, ray"):
        run_sweep(parse_spec(SPEC), tmp_path / "x.db", backend="dask")
