"""Every experiment runs in tiny mode, its verdict follows from its numbers, and reruns repeat."""

from __future__ import annotations

import json

import pytest

from actlab.experiments import UnknownExperiment, experiment_names, experiments, get_experiment
from actlab.experiments.base import Check, Verdict, compare, threshold
from actlab.experiments.runner import run_experiment, write_outputs

NAMES = experiment_names()


def test_the_lab_has_experiments():
    assert len(NAMES) >= 1
    for e in experiments():
        assert e.claim and e.title and e.method, e.name


@pytest.mark.parametrize("name", NAMES)
def test_tiny_run_verdict_is_computed_from_numbers(name, tmp_path):
    exp = get_experiment(name)
    r = run_experiment(exp, "tiny")
    assert r.error is None, r.error
    assert r.figure_png and r.figure_png[:8] == b"\x89PNG\r\n\x1a\n"
    # The verdict is a function of the numbers alone.
    assert exp.decide(json.loads(json.dumps(r.numbers, default=float))) == r.verdict
    # Reversing the measured effect changes the verdict.
    flipped = exp.decide(exp.counterfactual(r.numbers))
    assert flipped != r.verdict, (name, r.verdict, flipped)
    paths = write_outputs([r], tmp_path)
    assert paths["html"].read_text().count(r.title) >= 1
    assert json.loads(paths["json"].read_text())["results"][0]["verdict"]["status"] == r.verdict.status


@pytest.mark.parametrize("name", [n for n in NAMES if getattr(get_experiment(n), "deterministic", True)][:2])
def test_same_seed_same_numbers(name):
    a = run_experiment(name, "tiny")
    b = run_experiment(name, "tiny")
    assert json.dumps(a.numbers, sort_keys=True, default=str) == json.dumps(b.numbers, sort_keys=True, default=str)


def test_unknown_experiment_names_the_choices():
    with pytest.raises(UnknownExperiment) as e:
        get_experiment("sigmoid_vanishng")
    assert "Valid experiments" in str(e.value)


def test_decision_helpers():
    assert compare("a<b", [1, 1.1, 0.9], [5, 5.2, 4.8], expect="less").state == "pass"
    assert compare("a<b", [5, 5.2, 4.8], [1, 1.1, 0.9], expect="less").state == "fail"
    assert compare("a<b", [1, 5], [2, 4], expect="less").state == "unclear"
    assert compare("log", [1e-6, 2e-6], [1e-1, 2e-1], expect="less", log=True).state == "pass"
    assert threshold("t", [0.1, 0.2], below=0.5).state == "pass"
    assert threshold("t", [0.7, 0.8], below=0.5).state == "fail"
    v = Verdict.from_checks([Check("x", "pass"), Check("y", "fail")])
    assert v.status == "not confirmed"
    assert Verdict.from_checks([Check("x", "pass"), Check("y", "unclear")]).status == "inconclusive"
    assert Verdict.from_checks([Check("x", "pass"), Check("y", "pass")]).status == "confirmed"
