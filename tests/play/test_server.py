"""The server: pages, shipped assets, and a WebSocket that refuses bad messages and keeps going."""

from __future__ import annotations

import json
import warnings
from importlib import resources

import pytest

from actlab.play.server import create_app, free_socket

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 in its TestClient; httpx still works and is what the test extra installs.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(warm_up=False)) as c:
        yield c


def _until(ws, kind: str, limit: int = 500) -> dict:
    for _ in range(limit):
        m = ws.receive_json()
        if m["type"] == kind:
            return m
    raise AssertionError(f"no {kind!r} message")


def test_assets_ship_in_the_package_and_are_served(client: TestClient) -> None:
    static = resources.files("actlab.play") / "static"
    for name in ("index.html", "app.js", "style.css"):
        assert (static / name).is_file()
        assert client.get("/static/" + name).status_code == 200
    page = client.get("/").text
    assert "/static/app.js" in page and "http" not in page.replace("http-equiv", "")  # no CDN
    ctl = client.get("/api/controls").json()
    assert "sigmoid" in ctl["controls"]["activation"]["choices"] and ctl["default"]["depth"] >= 1


def test_bad_messages_get_an_error_and_the_connection_keeps_working(client: TestClient) -> None:
    bad = ["garbage", "[1]", json.dumps({"type": "explode"}), json.dumps({"type": "step", "n": -3}),
           json.dumps({"type": "configure", "config": {"depth": 1000}}), "x" * 70_000]
    with client.websocket_connect("/ws") as ws:
        for raw in bad:
            ws.send_text(raw)
            m = ws.receive_json()
            assert m["type"] == "error" and m["message"]
        ws.send_bytes(b"\x00\x01")
        assert "binary" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "play"}))
        assert "configure" in _until(ws, "error")["message"]  # nothing to play yet, said so
        ws.send_text(json.dumps({"type": "configure", "config": {"activation": "sigmoid", "depth": 10}}))
        ready = _until(ws, "ready")
        assert ready["config"]["depth"] == 10 and ready["sigma_w2"] == pytest.approx(1.0, rel=0.05)
        ws.send_text(json.dumps({"type": "step", "n": 3}))
        for _ in range(500):
            f = _until(ws, "frame")
            if f["step"] == 3 and f["state"] == "paused":
                break
        assert f["grads"]["measured"][0] < f["grads"]["measured"][-1]
        ws.send_text(json.dumps({"type": "theory", "activation": "relu", "sigma_w2": 2.0}))
        t = _until(ws, "theory")
        assert t["phase"] == "critical" and t["chi_1"] == pytest.approx(1.0)
        ws.send_text(json.dumps({"type": "close", "run": "b"}))
        assert _until(ws, "closed")["run"] == "b"


def test_compare_runs_two_nets_on_one_page(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        for run, act in (("a", "sigmoid"), ("b", "relu")):
            ws.send_text(json.dumps({"type": "configure", "run": run, "config": {"activation": act, "depth": 5}}))
            assert _until(ws, "ready")["run"] == run
        for run in "ab":
            ws.send_text(json.dumps({"type": "step", "run": run, "n": 2}))
        seen = set()
        for _ in range(1000):
            f = _until(ws, "frame")
            if f["step"] == 2:
                seen.add(f["run"])
            if seen == {"a", "b"}:
                break
        assert seen == {"a", "b"}


def test_free_socket_binds_loopback_on_a_free_port() -> None:
    s = free_socket()
    try:
        host, port = s.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
    finally:
        s.close()


def test_a_setup_that_fails_to_build_is_reported_and_the_page_goes_on(client: TestClient, monkeypatch) -> None:
    import actlab.play.session as session

    real = session.Session

    def broken(config, **kw):
        if config.depth == 13:
            raise RuntimeError("simulated failure deep in torch")
        return real(config, **kw)

    monkeypatch.setattr(session, "Session", broken)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "configure", "config": {"depth": 13}}))
        err = _until(ws, "error")
        assert "simulated failure" in err["message"] and err["request"] == "configure"
        ws.send_text(json.dumps({"type": "configure", "config": {"depth": 2}}))
        assert _until(ws, "ready")["config"]["depth"] == 2


def test_the_opening_setup_is_built_at_start_up_and_handed_to_the_first_page() -> None:
    from actlab.play.config import PlayConfig
    from actlab.play.server import Opening

    app = create_app()  # warm_up: the Opening builds the default setup in the background
    opening = app.state.opening
    with TestClient(app) as c:
        assert c.get("/static/app.js").status_code == 200
        with c.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps({"type": "configure", "config": {}}))
            assert _until(ws, "ready")["config"] == PlayConfig().to_dict()
            frame = _until(ws, "frame")
            assert frame["seq"] == 1 and frame["step"] == 0 and frame["state"] == "paused"
            # the built net was handed over (taken once: a reset or the next page builds its own)
            assert opening.error == "" and opening.session is None
            ws.send_text(json.dumps({"type": "step", "n": 2}))
            while frame["step"] < 2:
                frame = _until(ws, "frame")
    # the warm-up goes on in the background (a probed step): let it end before other tests run
    # (attaching a probe resets torch.compile's caches, which a compile test running meanwhile would feel)
    opening._thread.join(120)
    o = Opening(0.05, threads=None, build=True)
    assert o._done.wait(120) and o.error == ""
    assert o.take(PlayConfig(depth=3), 0.05) is None and o.take(PlayConfig(), 0.01) is None
    s = o.take(PlayConfig(), 0.05)
    assert s is not None and s.config == PlayConfig() and o.take(PlayConfig(), 0.05) is None
    s.close()
    o.close()
    o._thread.join(120)
