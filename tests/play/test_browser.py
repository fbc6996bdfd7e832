"""The playground in a real browser (Playwright driving Debian's chromium).

Skips, saying why, when the ``playwright`` package or ``/usr/bin/chromium`` is missing (``.ci/run``
installs both).  Screenshots go to ``$ACTLAB_SCREENSHOTS`` (default: a pytest temp folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ACTLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(pip install playwright; the browser is Debian's chromium, not playwright's download)")
if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set ACTLAB_CHROMIUM)",
                allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server_url():
    p = subprocess.Popen([sys.executable, "-c", "from actlab.cli import main; main()", "play", "--no-browser"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, seen = None, []
    end = time.monotonic() + 120
    while url is None and time.monotonic() < end:
        line = p.stdout.readline()
        if not line and p.poll() is not None:
            break
        seen.append(line)
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        url = m.group(0) if m else None
    if url is None:
        p.kill()
        pytest.fail("actlab play printed no URL:\n" + "".join(seen))
    yield url, p
    p.terminate()
    p.wait(30)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("ACTLAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def page(browser, server_url):
    pg = browser.new_page(viewport={"width": 1500, "height": 1050})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _ready(page, **want) -> None:
    """Wait until run A was built with these settings (the server answered 'ready')."""
    cond = " && ".join(f"r.config[{json.dumps(k)}] === {json.dumps(v)}" for k, v in want.items()) or "true"
    page.wait_for_function(f"(() => {{ const r = window.actlab && window.actlab.ready.a; return !!r && {cond}; }})()",
                           timeout=90_000)


def _set(page, control: str, value) -> None:
    sel = f"#c-{control}"
    if page.eval_on_selector(sel, "e => e.tagName") == "SELECT":
        page.select_option(sel, str(value))
    else:
        page.fill(sel, str(value))
        page.dispatch_event(sel, "change")


def _step(page) -> int:
    return int(page.get_attribute("#run-a", "data-step") or 0)


def test_sigmoid_depth_10_vanishes_then_relu_he_trains(page, server_url, shots: Path) -> None:
    url, _ = server_url
    page.goto(url)
    _ready(page)
    _set(page, "activation", "sigmoid")
    _set(page, "depth", 10)
    _ready(page, activation="sigmoid", depth=10)
    page.click("#btn-play")
    page.wait_for_function("Number(document.querySelector('#run-a').dataset.step) >= 100", timeout=120_000)
    page.wait_for_function("document.querySelector('#run-a .f-list').innerText.includes('vanishing')", timeout=60_000)
    ratio = float(page.get_attribute("#run-a .r-grads", "data-ratio"))
    assert ratio < 1e-3, f"first layer / output gradient {ratio:g}: not far below"
    assert "vanishing gradients" in page.inner_text("#run-a .f-list")
    page.screenshot(path=str(shots / "play-sigmoid-depth10.png"), full_page=True)

    _set(page, "activation", "relu")
    _set(page, "init", "he_normal")
    _ready(page, activation="relu", init="he_normal", depth=10)
    page.click("#btn-play")
    # Trains: the training loss falls well below where it started.
    page.wait_for_function(
        "(() => { const r = document.querySelector('#run-a .r-loss').dataset;"
        " return Number(r.step) >= 100 && Number(r.last) < 0.75 * Number(r.first); })()", timeout=180_000)
    page.click("#btn-play")  # pause
    assert "relu" in page.inner_text("#run-a .run-title")
    page.screenshot(path=str(shots / "play-relu-he.png"), full_page=True)


def test_a_shared_link_restores_the_setup(page, server_url, shots: Path) -> None:
    url, _ = server_url
    page.goto(url + "?activation=elu&depth=7&init=critical&lr=0.1&seed=3&compare=1&b.activation=tanh&b.depth=3")
    _ready(page, activation="elu", depth=7, init="critical", lr=0.1, seed=3)
    assert page.input_value("#c-activation") == "elu" and page.input_value("#c-depth") == "7"
    assert page.input_value("#c-init") == "critical" and page.input_value("#c-lr") == "0.1"
    assert page.is_checked("#compare")
    page.wait_for_function("!!(window.actlab.ready.b) && window.actlab.ready.b.config.activation === 'tanh'",
                           timeout=90_000)
    b = page.evaluate("window.actlab.ready.b.config")
    assert (b["depth"], b["seed"], b["init"]) == (3, 3, "he_normal")
    page.click("#btn-step")
    page.wait_for_function("Number(document.querySelector('#run-b').dataset.step) >= 1", timeout=60_000)
    # Changing a control writes the link again.
    _set(page, "width", 12)
    page.wait_for_function("location.search.includes('width=12')")
    page.screenshot(path=str(shots / "play-compare.png"), full_page=True)


def test_malformed_messages_are_rejected_and_the_server_keeps_running(page, server_url, shots: Path) -> None:
    url, proc = server_url
    page.goto(url)
    _ready(page)
    bad = ["not json", "[1, 2, 3]", json.dumps({"type": "explode"}), json.dumps({"type": "step", "n": -1}),
           json.dumps({"type": "configure", "config": {"activation": "__import__('os').system('true')"}}),
           json.dumps({"type": "play", "run": "z"}), "x" * 70_000]
    page.evaluate("bad => bad.forEach(m => window.actlab.ws.send(m))", bad)
    page.wait_for_function(f"window.actlab.errors.length >= {len(bad)}", timeout=30_000)
    errors = page.evaluate("window.actlab.errors")
    assert any("not valid JSON" in e for e in errors) and any("'explode'" in e for e in errors)
    assert any("too long" in e for e in errors) and any("unknown activation" in e for e in errors)
    assert proc.poll() is None
    before = _step(page)
    page.click("#btn-step")
    page.wait_for_function(f"Number(document.querySelector('#run-a').dataset.step) > {before}", timeout=60_000)
    assert "not valid JSON" in page.inner_text("#log")
    page.screenshot(path=str(shots / "play-rejected.png"), full_page=True)


LIVE_SCRIPT = """
import sys, time, torch
from actlab import Probe
from actlab.play import watch
torch.manual_seed(0)
# 2-D inputs (an xor of the signs), so the page draws the decision surface too
model = torch.nn.Sequential(*[m for i in range(8) for m in (torch.nn.Linear(2 if i == 0 else 16, 16), torch.nn.Sigmoid())],
                            torch.nn.Linear(16, 2))
# A small step size keeps the net in its vanishing regime for thousands of steps (at lr 0.1 it
# leaves it within ~35 steps: layer 1 / output 0.005 at step 30, 0.07 at step 39), so the check
# does not race the training loop.
opt = torch.optim.SGD(model.parameters(), lr=0.001)
x = torch.randn(256, 2); y = (x[:, 0] * x[:, 1] > 0).long()
with Probe(model) as probe, watch(probe, open_browser=False) as live:
    for i in range(100000):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step(); live.loss(loss)
        time.sleep(0.01)
"""


def test_your_own_training_streams_into_the_page(browser, shots: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", LIVE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        end = time.monotonic() + 120
        while "http" not in line and time.monotonic() < end and p.poll() is None:
            line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+/\?live=1", line)
        assert m, f"no live URL printed: {line!r}"
        pg = browser.new_page(viewport={"width": 1300, "height": 900})
        pg.goto(m.group(0))
        pg.wait_for_function("(document.querySelector('#run-a .f-list') || {innerText: ''}).innerText.includes('vanishing')",
                             timeout=120_000)
        assert "Sequential" in pg.inner_text("#run-a .run-title")
        pg.wait_for_function("Number(document.querySelector('#run-a').dataset.step) >= 30", timeout=120_000)
        ratio = float(pg.get_attribute("#run-a .r-grads", "data-ratio"))
        assert ratio < 1e-2
        # the decision surface (2-D inputs) and one histogram per sigmoid layer, its flat tails shaded
        pg.wait_for_function("document.querySelector('#run-a').dataset.surface === '1'", timeout=60_000)
        assert pg.is_visible("#run-a .c-surface") and "probability of class 1" in pg.inner_text("#run-a .plane-caption")
        pg.wait_for_function("document.querySelectorAll('#run-a .hists canvas').length === 8", timeout=60_000)
        assert pg.is_visible("#run-a .hists")
        pg.screenshot(path=str(shots / "play-live.png"), full_page=True)
        pg.close()
    finally:
        p.terminate()
        p.wait(30)
