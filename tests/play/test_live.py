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


def _train(model, feed, steps: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
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
