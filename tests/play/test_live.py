"""``actlab.play.watch``: a probe on the user's own model, read in the user's training thread."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from actlab import Probe
from actlab.play.live import LiveFeed
from actlab.play.server import create_app

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 in its TestClient; httpx still works and is what the test extra installs.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                               torch.nn.Linear(8, 2))


def _train(model, feed, steps: int, x=None, y=None) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    if x is None:
        x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        feed.loss(loss)


def test_frames_carry_the_probe_s_numbers_and_leave_training_unchanged() -> None:
    model = _net()
    with Probe(model) as probe:
        feed = LiveFeed(probe, interval=1e-9)
        _train(model, feed, 5)
        feed.publish()
        g = feed.frame["grads"]
        assert g["which"] == "params" and g["measured"] == list(probe.layer_grad_norms().values())
        assert feed.frame["loss"]["train"] is not None and feed.seq >= 5
        json.dumps(feed.frame, allow_nan=False)
        feed.close()
    # The feed only reads: the same loop without it gives the same weights.
    ref = _net()
    with Probe(ref):
        _train(ref, type("NoFeed", (), {"loss": lambda self, v: None})(), 5)
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="Probe"):
        LiveFeed(_net())  # type: ignore[arg-type]
    with Probe(_net()) as probe, pytest.raises(ValueError, match="interval"):
        LiveFeed(probe, interval=0)


def test_the_page_shows_the_feed_and_refuses_the_buttons() -> None:
    model = _net()
    with Probe(model) as probe:
        feed = LiveFeed(probe, interval=1e-9)
        _train(model, feed, 3)
        with TestClient(create_app(warm_up=False, live=feed)) as c, c.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps({"type": "watch"}))
            ready = ws.receive_json()
            assert ready["type"] == "ready" and ready["live"]
            frame = ws.receive_json()
            assert frame["type"] == "frame" and frame["seq"] == feed.seq
            ws.send_text(json.dumps({"type": "play"}))
            assert "training loop" in ws.receive_json()["message"]
        feed.close()
    with TestClient(create_app(warm_up=False)) as c, c.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "watch"}))
        assert "actlab.play.watch" in ws.receive_json()["message"]


def _plane_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 2))


def _plane_batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3)) * 2 + 1
    return x, (x[:, 0] > 1).long()


def test_histograms_are_the_probe_s_with_each_layer_s_saturated_regions() -> None:
    model = _net()
    with Probe(model, update_every=1) as probe:
        feed = LiveFeed(probe, interval=1e-9)
        _train(model, feed, 4)
        feed.publish()
        hists = feed.frame["hist"]
        want = probe.read().histograms
        assert [h["layer"] for h in hists] == list(want) == ["1", "3"]
        for h in hists:
            assert h["counts"] == want[h["layer"]].counts.tolist() and h["r"] == want[h["layer"]].r
            # tanh is flat beyond |x| ~ 3 on both sides
            (a, b), (c, d) = h["saturated"]
            assert a == -60.0 and -4 < b < -2 and 2 < c < 4 and d == 60.0
        feed.close()


def test_a_2d_input_gets_a_decision_surface_and_training_is_unchanged() -> None:
    model = _plane_net()
    with Probe(model) as probe:
        feed = LiveFeed(probe, interval=1e-9)
        _train(model, feed, 6, *_plane_batch())
        f = feed.frame
        assert f["surface_what"].startswith("probability of class 1 (") and len(f["points"]) == 64
        x0, x1, y0, y1 = f["box"]
        assert x0 < -2 and x1 > 4 and y0 < -2 and y1 > 4  # around the inputs (mean 1, sd 2)
        assert model.training and all(m.training for m in model.modules())
        assert probe.read().seen["eval_forwards"] == 0  # the picture's forward is not a step, nor counted
        feed.close()
    ref = _plane_net()
    with Probe(ref):
        _train(ref, type("NoFeed", (), {"loss": lambda self, v: None})(), 6, *_plane_batch())
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_without_2d_input_the_panel_says_why() -> None:
    model = _net()
    with Probe(model) as probe:
        feed = LiveFeed(probe, interval=1e-9)
        _train(model, feed, 2)
        assert "surface" not in feed.frame and "(32, 4)" in feed.frame["surface_note"]
        assert "2-D inputs" in feed.frame["surface_note"]
        feed.close()
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    with Probe(model) as probe:
        feed = LiveFeed(probe, interval=1e-9)
        model(torch.randn(5, 2)).sum().backward()
        model(torch.randn(5, 2))
        assert "3 outputs" in feed.frame["surface_note"]
        feed.close()
