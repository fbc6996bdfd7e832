"""Every experiment runs in tiny mode, its verdict follows from its numbers, and reruns repeat."""

from __future__ import annotations

import html
import json

import pytest

from actlab.experiments import UnknownExperiment, experiment_names, experiments, get_experiment
from actlab.experiments.base import Check, Verdict, compare, fmt_ms, threshold
from actlab.experiments.runner import run_experiment, write_outputs

NAMES = experiment_names()


def test_the_lab_has_experiments():
    assert len(NAMES) >= 1
    for e in experiments():
        assert e.claim and e.title and e.method, e.name
        assert e.source and e.source_found, f"{e.name}: name the source and what it found"


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
    assert paths["html"].read_text().count(html.escape(r.title)) >= 1
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
    v = Verdict.from_checks([Check("x", "pass")], sanity=[Check("s", "fail")])
    assert v.status == "confirmed" and v.sanity[0].role == "sanity"  # sanity checks never decide


def test_compare_is_welch_t_at_the_stated_level():
    from scipy import stats

    a, b = [1.0, 1.2, 0.9, 1.1, 1.05], [1.5, 1.7, 1.4, 1.6, 1.45]
    c = compare("a<b", a, b, expect="less")
    t = stats.ttest_ind(a, b, equal_var=False)
    ci = t.confidence_interval(0.95)
    assert c.state == "pass" and c.effect == pytest.approx(-0.48)
    assert c.ci == pytest.approx((ci.low, ci.high), rel=1e-9)
    # A gap just over 2 standard errors with 3 seeds is not a 95% test: t_{0.975, ~4} is ~2.8, not 2.
    assert compare("a<b", [0.0, 1.0, 2.0], [2.2, 3.2, 4.2], expect="less").state == "unclear"


def test_compare_cannot_decide_without_spread():
    c = compare("a<b", [0.0, 0.0, 0.0], [0.02, 0.02, 0.02], expect="less")
    assert c.state == "unclear" and "cannot decide" in c.detail and c.ci is None
    assert compare("a<b", [1.0], [2.0, 3.0], expect="less").state == "unclear"


def test_fmt_ms_says_how_many_values_were_finite():
    assert fmt_ms([1.0, 3.0]) == "2 ± 1.4"
    assert fmt_ms([1.0, float("nan"), 3.0]) == "2 ± 1.4 (2/3)"
    assert fmt_ms([float("nan")] * 3) == "no finite value (0/3)"


def test_report_highlights_the_failing_clause_and_records_provenance(tmp_path):
    from actlab.experiments.base import ExperimentResult

    v = Verdict.from_checks([compare("good clause", [1, 1.1, 0.9], [5, 5.2, 4.8], expect="less"),
                             compare("bad clause", [5, 5.2, 4.8], [1, 1.1, 0.9], expect="less")],
                            sanity=[threshold("identity", [0.0], below=1e-6)])
    r = ExperimentResult(name="x", title="X", claim="c", method="m", mode="tiny", settings={"data": "digits"},
                         numbers={}, verdict=v, source="Someone 2001, Fig. 1", source_found="it works",
                         proxy="a smaller net")
    paths = write_outputs([r], tmp_path)
    page = paths["html"].read_text()
    assert "<tr class='fail'><td>bad clause</td><td>FAILS" in page
    assert "Sanity checks" in page and "The source found" in page and "proxy" in page
    assert "max-width:600px" in page  # the narrow-screen layout
    meta = json.loads(paths["json"].read_text())
    assert set(meta["provenance"]) >= {"git commit", "torch", "hardware", "data files"}
    assert meta["results"][0]["verdict"]["checks"][1]["state"] == "fail"
