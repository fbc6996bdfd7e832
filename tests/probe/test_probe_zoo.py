"""The diagnosis zoo (tests/probe/zoo.py): every broken case gets its finding with the right cause
and no false alarm; healthy models of eight families get no warning or error over 3 seeds; and
the probe leaves training bit-identical on every zoo model."""

from __future__ import annotations

import pytest
from zoo import BROKEN, HEALTHY, judge, run


@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.name)
def test_broken_case_gets_its_cause(case):
    findings, _, _ = run(case, seed=0)
    v = judge(case, findings)
    assert v.detected, v.findings
    assert v.right_cause, v.findings
    assert not v.false_alarms, v.findings


@pytest.mark.parametrize("case", HEALTHY, ids=lambda c: c.name)
def test_healthy_model_no_warning_over_three_seeds(case):
    for seed in range(3):
        findings, losses, probe = run(case, seed=seed)
        v = judge(case, findings)
        assert not v.false_alarms, (seed, v.findings)
        assert losses[-1] < losses[0]  # it does train
        assert probe.records()


@pytest.mark.parametrize("case", BROKEN + HEALTHY, ids=lambda c: c.name)
def test_training_bit_identical_with_the_probe(case):
    _, with_probe, _ = run(case, seed=0)
    _, without, _ = run(case, seed=0, with_probe=False)
    assert with_probe == without or all(a == b or (a != a and b != b) for a, b in zip(with_probe, without))
    assert len(with_probe) == len(without)
