"""``python -m actlab`` is the ``actlab`` command line."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "actlab", "lab", "--list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "sigmoid_vanishing" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "actlab", "nosuch"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "No such command 'nosuch'" in bad.stderr
