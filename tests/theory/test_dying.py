"""Born-dead probability: exact single-layer case, Wilson interval, Lu et al.'s regime, errors."""

from __future__ import annotations

import math

import pytest

from actlab.theory import TheoryError
from actlab.theory.dying import (
    INITS,
    born_dead,
    born_dead_table,
    exact_single_layer,
    wilson_interval,
)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.0370, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


@pytest.mark.parametrize("width,sb", [(1, 0.3), (2, 0.5), (2, 2.0), (3, 4.0)])
def test_single_layer_matches_exact(width, sb):
    # d_in = 1, depth 1: a unit is dead on [-1, 1] iff |w| + b <= 0 (probes include +-1).
    r = born_dead("relu", 1, width, init="normal", sigma_w2=1.0, sigma_b2=sb, trials=20_000, seed=1)
    p = exact_single_layer(width, 1.0, sb)
    se = math.sqrt(p * (1 - p) / r.trials)
    assert abs(r.probability - p) < 4 * se + 1e-4
    assert r.ci_low <= r.ci_high


def test_zero_bias_single_layer_never_dead():
    r = born_dead("relu", 1, 2, sigma_b2=0.0, trials=5000)
    assert r.dead == 0 and exact_single_layer(2, 2.0, 0.0) == 0.0


def test_deep_narrow_relu_is_likely_born_dead():
    # Lu et al. (2019): symmetric init, depth 10, width 3 -> a large probability.
    r = born_dead("relu", 10, 3, trials=4000)
    assert r.ci_low > 0.5
    assert sum(r.dead_layer_hist) == r.dead
    # Deeper is worse, wider is better.
    assert born_dead("relu", 20, 3, trials=2000).probability > born_dead("relu", 5, 3, trials=2000).probability
    assert born_dead("relu", 10, 10, trials=2000).probability < 0.05


def test_table_and_other_inits_and_activations():
    rows = born_dead_table("relu", depths=(2, 8), widths=(2, 6), trials=500)
    assert [(r.depth, r.width) for r in rows] == [(2, 2), (2, 6), (8, 2), (8, 6)]
    assert rows[2].probability > rows[0].probability
    for init in INITS:
        kw = {"sigma_w2": 2.0} if init in ("normal", "uniform") else {}
        assert 0.3 < born_dead("relu", 10, 3, init=init, trials=1000, **kw).probability < 0.95
    for name in ("relu6", "hardtanh", "hard_sigmoid"):
        r = born_dead(name, 10, 3, trials=500)
        assert 0 <= r.probability <= 1
    assert born_dead("relu", 6, 3, trials=500, seed=3) == born_dead("relu", 6, 3, trials=500, seed=3)


def test_errors():
    with pytest.raises(TheoryError, match="cannot die"):
        born_dead("leaky_relu")
    with pytest.raises(TheoryError, match="depth"):
        born_dead("relu", 0, 3)
    with pytest.raises(TheoryError, match="init"):
        born_dead("relu", 3, 3, init="orthogonal")
    with pytest.raises(TheoryError, match="sigma_w2"):
        born_dead("relu", 3, 3, init="normal")
    with pytest.raises(TheoryError, match="width"):
        born_dead("relu", 3, 0)
