"""Activation plots: what is shaded and marked comes from the spec, for every spec in the registry."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from actlab.activations import get, names, specs  # noqa: E402
from actlab.plot import style  # noqa: E402
from actlab.activations.regions import SATURATION_TOL  # noqa: E402
from actlab.plot.activations import (  # noqa: E402
    curves,
    default_range,
    maxout_pieces,
    plot_activation,
    saturated_regions,
)

ELEMENTWISE = [s.name for s in specs() if s.elementwise]
NOT_ELEMENTWISE = [s.name for s in specs() if not s.elementwise]


def _ref(spec, p, x):
    t = torch.as_tensor(x, dtype=torch.float64)
    y = spec.forward(t, p)
    return y.numpy(), spec.derivative(t, y, p).numpy()


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_curves_are_the_spec_and_break_at_kinks(name):
    c = curves(name)
    spec = get(name)
    ok = ~np.isnan(c.f)
    f, _ = _ref(spec, c.params, c.x_f[ok])
    np.testing.assert_allclose(c.f[ok], f, rtol=0, atol=1e-12)
    ok = ~np.isnan(c.df)
    _, df = _ref(spec, c.params, c.x_df[ok])
    np.testing.assert_allclose(c.df[ok], df, rtol=0, atol=1e-12)
    inside = [k for k in spec.kinks(c.params) if c.lo < k.x < c.hi]
    assert int(np.isnan(c.df).sum()) == len(inside)  # f' is broken once per kink
    assert int(np.isnan(c.f).sum()) == sum(k.jump for k in inside)  # f only at jumps
    assert [m.x for m in c.kinks] == [k.x for k in inside]
    assert [m.derivative for m in c.kinks] == [k.derivative for k in inside]
    assert c.lo <= -5 and c.hi >= 5 and all(c.lo + 2 <= k.x <= c.hi - 2 for k in inside)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_shading_is_where_the_derivative_is_small_on_a_saturating_side(name):
    c = curves(name)
    spec = get(name)
    if spec.saturates == "none":
        assert c.saturated == []
        return
    assert c.saturated, f"{name} saturates {spec.saturates} but nothing is shaded on [{c.lo}, {c.hi}]"
    for a, b in c.saturated:
        assert a == c.lo or b == c.hi  # touches an edge
        inner = np.linspace(a, b, 101)[1:-1]
        _, df = _ref(spec, c.params, inner)
        assert np.all(np.abs(df) <= SATURATION_TOL * c.max_df + 1e-12)
    if spec.saturates in ("left", "both"):
        assert any(a == c.lo for a, _ in c.saturated)
    if spec.saturates in ("right", "both"):
        assert any(b == c.hi for _, b in c.saturated)


def test_saturation_edges_are_exact():
    sig = curves("sigmoid")
    # sigma'(x) = 0.0125 at |x| = 2 acosh(1 / (2 sqrt(0.0125)))
    edge = 2 * math.acosh(1 / (2 * math.sqrt(SATURATION_TOL * 0.25)))
    assert sig.saturated == [(-5.0, pytest.approx(-edge, abs=1e-3)), (pytest.approx(edge, abs=1e-3), 5.0)]
    # ReLU's x < 0 is its zero side (inactive units), not saturation; ReLU6 saturates above 6
    assert curves("relu").saturated == []
    relu6 = curves("relu6", x_range=(-8.0, 8.0))
    assert relu6.saturated == [(pytest.approx(6.0, abs=1e-6), 8.0)]
    # GELU's f' crosses zero near x = -0.75: a dip, not saturation; only the left tail is shaded.
    gelu = curves("gelu")
    assert len(gelu.saturated) == 1 and gelu.saturated[0][1] < -2
    assert curves("step").saturated == [(-5.0, 5.0)]  # f' = 0 everywhere
    x = np.linspace(-1, 1, 5)
    assert saturated_regions(x, np.zeros(5), "none", 1.0) == []


def test_params_move_the_plot():
    c = curves("relu6", x_range=(-1.0, 3.0))
    assert (c.lo, c.hi) == (-1.0, 3.0) and [m.x for m in c.kinks] == [0.0]
    c = curves("leaky_relu", {"negative_slope": 0.3})
    assert c.kinks[0].derivative == 0.3 and c.df[0] == pytest.approx(0.3)
    assert default_range(get("hardtanh"), {"min_val": -8.0, "max_val": 9.0}) == (-10.0, 11.0)
    c = curves("prelu", {"negative_slope": torch.tensor([0.4, 0.1])})  # learnable: its first value
    assert c.params["negative_slope"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="LO < HI"):
        curves("relu", x_range=(1.0, 1.0))


def test_random_training_forward_is_sampled_without_touching_the_global_rng():
    state = torch.random.get_rng_state()
    with_samples = [s.name for s in specs() if s.elementwise and curves(s).samples is not None]
    assert torch.equal(state, torch.random.get_rng_state())
    for name in with_samples:  # a training draw differs from eval somewhere
        c = curves(name)
        x, y, _ = c.samples
        f_eval, _ = _ref(get(name), c.params, x)
        assert not np.allclose(y, f_eval)
    assert "rrelu" in with_samples and "relu" not in with_samples


@pytest.mark.parametrize("name", NOT_ELEMENTWISE)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_maxout_illustration_is_the_max_of_its_pieces(name, k):
    c = curves(name, {"pieces": k})
    w, b = c.pieces
    assert len(w) == k
    z = c.x_f[:, None] * w + b
    np.testing.assert_allclose(c.f, z.max(1), atol=1e-12)
    ok = ~np.isnan(c.df)
    np.testing.assert_allclose(c.df[ok], w[(c.x_df[ok, None] * w + b).argmax(1)], atol=1e-12)
    assert len(c.kinks) == k - 1  # every piece wins somewhere
    for m in c.kinks:  # the tie goes to the first maximal piece, whose slope is the left one
        assert m.derivative == m.left < m.right
    assert any("Linear(n, m*k)" in n for n in c.notes)
    w2, b2 = maxout_pieces(2, -5, 5)
    assert list(w2) == [-1.0, 1.0] and list(b2) == [0.0, 0.0]  # k = 2 draws |x|


def test_plot_activation_figure(tmp_path):
    fig = plot_activation("prelu", {"negative_slope": 0.1}, path=tmp_path / "p.png")
    ax = fig.axes[0]
    assert "PReLU (negative_slope=0.1)" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert {"f(x)", "f'(x)", "f' at kink (convention)"} <= set(labels)
    notes = fig.axes[1].texts[0].get_text()
    assert "learnable" in notes and "0.1" in notes
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_every_catalog_formula_renders_as_mathtext():
    for s in specs():
        for f in (s.formula, s.derivative_formula):
            m = style.mathtext(f)
            assert m.startswith("$") and style.renders(m), (s.name, f)
    assert not style.renders(r"$\notacommand$")
    assert style.mathtext(r"\notacommand{x}") == r"\notacommand{x}"  # plain text fallback


def test_names_cover_registry():
    assert sorted(ELEMENTWISE + NOT_ELEMENTWISE) == sorted(names())
