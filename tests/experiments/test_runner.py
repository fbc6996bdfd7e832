"""The lab's runner: experiments in parallel worker processes give the numbers one process gives,
progress comes back from the workers, and a missing real data set says where to put it."""

from __future__ import annotations

import json

import pytest

from actlab.experiments.runner import run_experiment, run_experiments

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
