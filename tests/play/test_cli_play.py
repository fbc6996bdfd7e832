"""``actlab play``: bad options are refused with one line; the server prints its URL and serves."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request

from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()


def test_bad_port_and_bad_setup_are_refused() -> None:
    r = runner.invoke(app, ["play", "--port", "70000", "--no-browser"])
    assert r.exit_code == 2 and "--port" in r.output and "70000" in r.output
    r = runner.invoke(app, ["play", "activation=sigmod&depth=10", "--no-browser"])
    assert r.exit_code == 2 and "'sigmod'" in r.output and "sigmoid" in r.output


def test_play_prints_a_loopback_url_and_serves_the_page() -> None:
    p = subprocess.Popen([sys.executable, "-c", "from actlab.cli import main; main()", "play", "--no-browser"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        end = time.monotonic() + 120
        while url is None and time.monotonic() < end:
            line = p.stdout.readline()
            if not line and p.poll() is not None:
                break
            m = re.search(r"http://127\.0\.0\.1:\d+/", line)
            url = m.group(0) if m else None
        assert url, "no URL printed"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"actlab" in r.read()
    finally:
        p.terminate()
        p.wait(30)
