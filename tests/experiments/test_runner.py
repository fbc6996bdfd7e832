"""The lab's runner: experiments in parallel worker processes give the numbers one process gives,
progress comes back from the workers, Ctrl-C stops every process and keeps what finished, and a
missing real data set says where to put it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actlab.experiments.runner import run_experiment, run_experiments

SRC = Path(__file__).resolve().parents[2] / "src"
# Cheap, deterministic experiments of different kinds (lab.train and the batched engine).
PAIR = ["zero_init_symmetry", "maxout", "step_not_trainable"]


def _numbers(results):
    return [(r.name, json.dumps(r.numbers, sort_keys=True, default=str), r.verdict) for r in results]


def test_parallel_run_gives_the_numbers_of_one_process():
    seen: list[tuple[str, float, str]] = []
    finished: list[str] = []
    one = run_experiments(PAIR, "tiny", jobs=1)
    two = run_experiments(PAIR, "tiny", lambda n, f, m: seen.append((n, f, m)), jobs=2,
                          on_result=lambda r: finished.append(r.name))
    assert [r.name for r in two] == PAIR  # report order, whatever the finishing order
    assert _numbers(one) == _numbers(two)
    assert sorted(finished) == sorted(PAIR) and all(r.error is None for r in two)
    # progress came back from the worker processes: partial fractions, then done, for each
    for name in PAIR:
        fracs = [f for n, f, _ in seen if n == name]
        assert any(0 < f < 1 for f in fracs) or len(fracs) > 1, (name, fracs)
        assert fracs[-1] == 1.0


def test_jobs_must_be_positive():
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        run_experiments(PAIR, "tiny", jobs=0)


def test_missing_data_says_where_to_put_it(monkeypatch, tmp_path):
    from actlab.lab import data as D

    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    monkeypatch.setattr(D, "DEFAULT_DATA_DIR", tmp_path / "cache")
    monkeypatch.setattr(D, "shared_data_dirs", lambda starts=None: [])
    r = run_experiment("top_layer_saturation", "tiny", overrides={"data": "mnist"})
    reason = r.verdict.reason
    assert r.verdict.status == "inconclusive" and reason.startswith("not run: mnist files") and r.error is None
    assert f"Put the four IDX files (raw or .gz) in {tmp_path / 'cache' / 'mnist'}/" in reason
    assert "--data-dir DIR" in reason and "ACTLAB_DATA=DIR" in reason and "actlab data download mnist" in reason


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_every_worker_and_keeps_the_finished_report(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "XDG_CACHE_HOME": str(tmp_path / ".cache")}
    # zero_init_symmetry (quick) finishes in seconds; the other two run for minutes on 2 cores.
    cmd = [sys.executable, "-c", "from actlab.cli import main; main()", "lab", "--mode", "quick", "--jobs", "2",
           "--only", "zero_init_symmetry", "--only", "relu_cnn_epochs", "--only", "lstm_vs_rnn",
           "--out", str(tmp_path / "out"), "--json"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [c for c in _children(p.pid) if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
        time.sleep(0.2)
    assert len(workers) >= 2, "the driver did not start two worker processes"
    time.sleep(15)  # long enough for zero_init_symmetry to finish on a loaded machine, most of the time
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    stopped = time.monotonic() - t0
    assert p.returncode == 130, (p.returncode, err)
    assert stopped < 15, f"took {stopped:.1f} s to stop"
    assert "interrupted:" in err and "of 3 experiments finished" in err and "--only relu_cnn_epochs" in err
    end = time.monotonic() + 10
    while time.monotonic() < end and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "a worker outlived its driver"
    finished = int(err.split("interrupted: ")[1].split(" of 3")[0])
    if finished:  # what finished is kept, in a report that says it was interrupted
        res = json.loads((tmp_path / "out" / "results.json").read_text())
        assert len(res["results"]) == finished and "interrupted" in res["meta"]
