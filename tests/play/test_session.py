"""A playground run: the lab trains, the probe measures, the frame only carries their numbers."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from actlab.play.config import PlayConfig
from actlab.play.session import (Session, activation_sheet, build_model, load_data, scheme_variance, surface_values,
                                 theory_sheet, weight_variance)
from actlab.theory import analyse, gradient_profile


def _wait(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


def _stepped(s: Session, n: int) -> None:
    """Until ``s`` has taken ``n`` steps, paused, and published the frame of step ``n`` (it is
    published just after the state turns to paused: on a busy machine, not at once)."""
    _wait(lambda: s.steps == n and s.state == "paused" and s.frame.get("step") == n, timeout=300.0)


@pytest.fixture
def sigmoid10():
    s = Session(PlayConfig(activation="sigmoid", depth=10), frame_interval=0.0)
    yield s
    s.close()


def test_starts_paused_and_steps_exactly(sigmoid10: Session) -> None:
    s = sigmoid10
    time.sleep(0.2)
    assert s.steps == 0 and s.state == "paused" and s.frame["step"] == 0
    s.step(7)
    _stepped(s, 7)
    time.sleep(0.2)
    assert s.steps == 7 and s.frame["step"] == 7  # and no further
    json.dumps(s.frame, allow_nan=False)  # the browser's JSON has no NaN


def test_frame_figures_are_the_probe_s_and_the_theory_s(sigmoid10: Session) -> None:
    s = sigmoid10
    s.step(30)
    _stepped(s, 30)
    g = s.frame["grads"]
    probe_norms = s._probe.layer_grad_norms(which="output")
    assert g["measured"] == [probe_norms[n] for n in g["layers"]]
    assert g["layers"] == [n for n, m in s.model.named_modules() if isinstance(m, torch.nn.Linear)]
    q_in = float(s.data.x_train.double().pow(2).mean())
    prof = gradient_profile("sigmoid", s.sigma_w2, s.sigma_b2, 10, q_in=q_in)
    assert g["theory"][:-1] == pytest.approx([g["measured"][-1] * p for p in prof])
    assert g["measured"][0] < 1e-3 * g["measured"][-1]  # sigmoid at depth 10: the first layer far below
    kinds = [f["kind"] for f in s.frame["findings"]]
    assert any("vanish" in k for k in kinds)
    assert len(s.frame["dead"]) == 10 and len(s.frame["hist"]) == 10
    assert sum(s.frame["hist"][0]["counts"]) == min(512, s.data.n_train) * 8
    assert [len(r) for r in s.frame["dead_units"]] == [8] * 10


def test_relu_he_trains() -> None:
    s = Session(PlayConfig(activation="relu", init="he_normal", depth=4, lr=0.1), frame_interval=0.0)
    try:
        first = s.frame["loss"]["train"]
        s.step(400)
        _stepped(s, 400)
        assert s.frame["loss"]["train"] < 0.6 * first
    finally:
        s.close()


def test_diverging_setup_is_a_result_not_a_crash() -> None:
    s = Session(PlayConfig(activation="leaky_relu", init="he_normal", depth=6, lr=10.0, optimiser="momentum"),
                frame_interval=0.0)
    try:
        s.play()
        _wait(lambda: s.state != "running", timeout=60)
        assert s.state == "diverged" and "NaN or Inf" in s.error
        _wait(lambda: s.frame.get("state") == "diverged")
    finally:
        s.close()


def test_sigma_w2_overrides_the_scheme_and_is_read_back() -> None:
    cfg = PlayConfig(depth=6, width=64, sigma_w2=2.5)
    m = build_model(cfg, load_data(cfg))
    sw, sb = weight_variance(m)
    assert sw == pytest.approx(2.5, rel=0.1) and sb == 0.0
    assert scheme_variance(cfg)[0] == pytest.approx(2.5, rel=0.02) and scheme_variance(cfg)[2] < 0.02


@pytest.mark.parametrize("act, init, want", [("relu", "he_normal", 2.0), ("tanh", "xavier_normal", 1.0),
                                             ("tanh", "torch_default", 1 / 3), ("leaky_relu", "he_normal", 2 / 1.0001)])
def test_theory_reads_the_scheme_s_variance_not_one_small_draw(act: str, init: str, want: float) -> None:
    sw, _, off = scheme_variance(PlayConfig(activation=act, init=init, width=8))
    assert sw == pytest.approx(want, rel=0.02) and off < 0.02


def test_no_theory_line_for_weights_that_are_not_zero_mean() -> None:
    s = Session(PlayConfig(init="constant"), frame_interval=0.0)
    try:
        s.step(1)
        _stepped(s, 1)
        assert s._profile is None and "not zero-mean" in s.frame["theory_note"]
        assert s.frame["grads"]["theory"] is None
    finally:
        s.close()


def test_image_sets_show_sample_predictions() -> None:
    s = Session(PlayConfig(data="digits", depth=2, width=32), frame_interval=0.0)
    try:
        intro = s.intro()
        assert not intro["plane"] and intro["images"]["h"] == 8 and len(intro["images"]["items"]) == 12
        assert len(s.frame["predictions"]) == 12 and "surface" not in s.frame
    finally:
        s.close()


def test_plane_sets_draw_surface_and_units() -> None:
    s = Session(PlayConfig(data="spirals", noise=0.2, train_pct=70, depth=3, width=5), frame_interval=0.0)
    try:
        intro = s.intro()
        assert intro["n_train"] == 350 and len(intro["points"]) == intro["n_train"] + intro["n_test"]
        assert len(s.frame["units"]) == 3 and len(s.frame["units"][0]) == 5
    finally:
        s.close()


def test_theory_sheet_is_analyse_and_says_when_blind() -> None:
    t = theory_sheet("tanh", 1.5)
    mf = analyse("tanh", 1.5, 0.0, 10)
    assert t["ok"] and t["chi_1"] == mf.chi_1 and t["phase"] == mf.phase
    assert t["critical_sigma_w2"] == pytest.approx(1.0, rel=1e-3)
    blind = theory_sheet("maxout", 1.0)
    assert not blind["ok"] and "maxout" in blind["why"]


def test_activation_sheet_comes_from_the_catalog_plot_curves() -> None:
    a = activation_sheet("sigmoid")
    assert a["props"]["saturates"] == "both" and len(a["saturated"]) == 2
    x0 = [v for v in a["x"] if v is not None]
    assert math.isclose(a["f"][a["x"].index(min(x0, key=abs))], 0.5, abs_tol=0.02)


def test_dead_unit_map_is_relu_s_never_positive_units() -> None:
    s = Session(PlayConfig(activation="relu", init="he_normal", lr=1.0, depth=6), frame_interval=0.0)
    try:
        s.step(30)
        _stepped(s, 30)
        with torch.no_grad():
            _, pre, _ = s.model.eval().forward_all(s.data.x_train[s._disp])
        want = [[int(v) for v in (p <= 0).all(0).tolist()] for p in pre]
        assert s.frame["dead_units"] == want and sum(map(sum, want)) > 0  # lr 1.0 kills some
    finally:
        s.close()


def test_surface_shows_class_1_or_the_output_s_sign_or_says_why_not() -> None:
    p, what = surface_values(torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]]))
    assert p.tolist() == pytest.approx([0.5, 0.75]) and "0.5 to 0.75 over the plane" in what
    v, what = surface_values(torch.tensor([[-2.0], [0.0], [1.0]]))
    assert v.tolist() == pytest.approx([0.0, 0.5, 0.75]) and "-2 to 1 over the plane" in what
    v, what = surface_values(torch.zeros(4, 3))
    assert v is None and "3 outputs" in what
