"""The SQLite store: rows, idempotent writes, frames, exports, and kill-and-resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from actlab.sweep.backends.local import run_sweep
from actlab.sweep.engine import train_group
from actlab.sweep.spec import parse_spec
from actlab.sweep.store import Store

SPEC = {"name": "t", "axes": {"activation": ["relu", "tanh"], "depth": 1, "width": 8, "lr": [0.1, 1e4],
                              "seed": [0, 1], "steps": 12, "batch_size": 16},
        "record": {"every": 5}}


def test_run_write_read_export(tmp_path):
    spec = parse_spec(SPEC)
    st = run_sweep(spec, tmp_path / "s.db", chunk_size=3)
    h = spec.hash
    # relu at lr 1e4 overflows to NaN; tanh, bounded, saturates instead and stays finite
    assert st.status_counts(h) == {"done": 6, "diverged": 2}
    assert st.count("results") == 8 and st.pending(h) == []
    n_rec = st.count("records")
    assert st.count("layer_records") >= n_rec
    df = st.to_dataframe(h)
    assert len(df) == 8 and set(df.activation) == {"relu", "tanh"}
    assert df.loc[df.lr == 0.1, "test_error"].notna().all()
    div = df[df.status == "diverged"]
    assert div.diverged.all() and set(div.activation) == {"relu"} and set(div.lr) == {1e4}
    rec = st.records_dataframe(h)
    assert {"step", "loss", "param_grad_norm", "label", "lr"} <= set(rec.columns) and len(rec) == n_rec
    # a second run trains nothing and writes nothing twice
    run_sweep(spec, st)
    assert st.count("results") == 8 and st.count("records") == n_rec
    # writing the same results again is ignored
    res = train_group(spec.configs()[:2], spec.record)
    assert st.write_results(res) == 0 and st.count("results") == 8
    import importlib.util

    # Parquet needs pyarrow (the integration extra); CSV is always there.
    parquet = importlib.util.find_spec("pyarrow") is not None
    for table, suffix in (("results", ".csv"), ("results", ".parquet"), ("records", ".parquet")):
        if suffix == ".parquet" and not parquet:
            continue
        p = st.export(tmp_path / f"{table}{suffix}", table=table)
        back = pd.read_csv(p) if suffix == ".csv" else pd.read_parquet(p)
        assert len(back) == (8 if table == "results" else n_rec)
    with pytest.raises(ValueError, match="valid: .csv, .parquet"):
        st.export(tmp_path / "x.xlsx")
    assert st.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_shared_between_specs(tmp_path):
    a = parse_spec({**SPEC, "axes": {**SPEC["axes"], "lr": 0.1}})
    b = parse_spec({**SPEC, "axes": {**SPEC["axes"], "lr": 0.1, "seed": [1, 2]}})
    st = run_sweep(a, tmp_path / "s.db")
    assert st.pending(b.hash) == []  # b not registered yet
    st.add_sweep(b)
    assert len(st.pending(b.hash)) == 2  # seed 1 configs are shared with a
    run_sweep(b, st)
    assert st.count("results") == 6 and len(st.to_dataframe(b.hash)) == 4 and len(st.to_dataframe()) == 6


KILL_SPEC = textwrap.dedent("""
    name: killme
    axes:
      activation: [relu, tanh, gelu]
      seed: [0, 1, 2, 3, 4, 5, 6, 7]
      depth: 2
      width: 32
      lr: 0.05
      steps: 400
      batch_size: 64
    record: {every: 50}
""")


def test_sigkill_and_resume_loses_nothing_duplicates_nothing(tmp_path):
    spec_path, db = tmp_path / "kill.yaml", tmp_path / "kill.db"
    spec_path.write_text(KILL_SPEC)
    code = ("import sys; from actlab.sweep import load_spec; from actlab.sweep.backends.local import run_sweep; "
            "run_sweep(load_spec(sys.argv[1]), sys.argv[2], chunk_size=1, threads=1)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(spec_path), str(db)], env=env)
    done_before = 0
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=5) as c:
                        done_before = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:  # tables not created yet
                    continue
                if done_before >= 3:
                    break
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    from actlab.sweep import load_spec

    spec = load_spec(spec_path)
    st = Store(db)
    before = st.to_dataframe(spec.hash).set_index("config_hash")
    finished = before[before.status == "done"]
    assert len(finished) >= 3 and len(st.pending(spec.hash)) > 0
    # every finished config has all its rows; no pending config has any
    n_rec = len(range(0, 400, 50)) + 1
    per = dict(st.conn.execute("SELECT config_hash, COUNT(*) FROM records GROUP BY config_hash").fetchall())
    assert set(per) == set(finished.index) and set(per.values()) == {n_rec}

    run_sweep(spec, st, threads=1)
    after = st.to_dataframe(spec.hash).set_index("config_hash")
    assert (after.status == "done").all() and len(after) == 24
    assert st.count("results") == 24 and st.count("records") == 24 * n_rec
    assert st.count("layer_records") == 24 * n_rec * 3
    dup = st.conn.execute("SELECT config_hash, step, COUNT(*) FROM records GROUP BY 1, 2 HAVING COUNT(*) > 1")
    assert dup.fetchall() == []
    # results finished before the kill are untouched by the restart
    pd.testing.assert_frame_equal(after.loc[finished.index, ["test_loss", "train_loss"]],
                                  finished[["test_loss", "train_loss"]])


def test_a_store_with_the_old_column_names_is_renamed_to_the_probe_vocabulary(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE records (config_hash TEXT NOT NULL, step INTEGER NOT NULL, loss REAL, grad_norm REAL, "
                 "dead_fraction REAL, saturation_fraction REAL, PRIMARY KEY (config_hash, step))")
    conn.execute("INSERT INTO records VALUES ('h', 0, 1.0, 2.0, 0.25, 0.5)")
    conn.commit()
    conn.close()
    with Store(path) as store:
        cols = [r[1] for r in store.conn.execute("PRAGMA table_info(records)")]
        row = store.conn.execute("SELECT param_grad_norm, inactive, saturated FROM records").fetchone()
    assert cols == ["config_hash", "step", "loss", "param_grad_norm", "inactive", "saturated", "weight_grad_norm"]
    assert row == (2.0, 0.25, 0.5)


def test_a_store_from_before_the_error_columns_opens_with_errors_and_takes_results(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)  # the results table as written when finals held accuracies
    conn.execute("CREATE TABLE results (config_hash TEXT PRIMARY KEY, train_loss REAL, train_accuracy REAL, "
                 "test_loss REAL, test_accuracy REAL, last_batch_loss REAL, steps_to_target REAL, "
                 "dead_fraction REAL, saturation_fraction REAL, diverged REAL, diverged_at REAL, wall_s REAL, "
                 "finished REAL NOT NULL)")
    conn.execute("INSERT INTO results (config_hash, train_accuracy, test_accuracy, steps_to_target, wall_s, finished) "
                 "VALUES ('old', 0.75, NULL, 7, 1.5, 0)")
    conn.commit()
    conn.close()
    st = Store(path)
    assert st.conn.execute("SELECT train_error, test_error FROM results WHERE config_hash = 'old'").fetchone() == (0.25, None)
    # the old steps_to_target was the batch-loss crossing: kept under that name; today's (an
    # evaluation meeting Record.target_error) was not measured then
    assert st.conn.execute("SELECT steps_to_batch_loss, wall_time, steps_to_target FROM results "
                           "WHERE config_hash = 'old'").fetchone() == (7, 1.5, None)
    spec = parse_spec({"name": "new", "axes": {"activation": "relu", "depth": 1, "width": 8, "steps": 5,
                                               "data": "iris"}})
    df = run_sweep(spec, st).to_dataframe()
    assert len(df) == 1 and 0.0 <= df.test_error.iloc[0] <= 1.0
    Store(path).close()  # a second open finds nothing to migrate
