"""Every benchmark under benchmarks/ takes the same output options (``--json``: JSON alone on
stdout; ``--json-out PATH``), prints progress on stderr and exits 1 on a missed target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def _run(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_every_benchmark_is_covered() -> None:
    names = {p.stem for p in SCRIPTS}
    assert {"activations", "cli_startup", "diagnosis", "play", "probe_overhead", "sweep", "theory"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_every_benchmark_takes_json_and_json_out(script: Path) -> None:
    r = _run(str(script), "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "--json print the results as one JSON document to stdout" in text, text
    assert "--json-out PATH" in text


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_every_benchmark_checks_json_out_before_the_work(script: Path, tmp_path: Path) -> None:
    (tmp_path / "a_dir").mkdir()
    r = _run(str(script), "--json-out", str(tmp_path / "a_dir"), timeout=120)
    assert r.returncode == 2 and "is a folder" in r.stderr, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr


def test_a_met_target_exits_0_with_json_alone_on_stdout(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    r = _run(str(BENCH / "theory.py"), "--repeats", "2", "--target-ms", "1e9", "--json", "--json-out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout is the JSON document and nothing else
    assert doc == json.loads(out.read_text())
    assert doc["rows"] and all(row.get("pass", True) for row in doc["rows"])
    assert "[1/" in r.stderr and "median ms" in r.stderr  # progress and the table went to stderr


def test_a_missed_target_exits_1_and_says_which(tmp_path: Path) -> None:
    r = _run(str(BENCH / "theory.py"), "--repeats", "2", "--target-ms", "1e-9")
    assert r.returncode == 1
    assert "targets failed: " in r.stderr and "relu" in r.stderr.split("targets failed: ")[1]
    assert "FAIL" in r.stdout  # without --json the table is on stdout
