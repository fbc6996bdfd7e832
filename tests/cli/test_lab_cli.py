"""`actlab lab`: --jobs runs experiments in parallel with the numbers of one process, and a bad
--jobs is one line naming the valid range."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()
PAIR = ["zero_init_symmetry", "maxout"]


def _lab(tmp_path, jobs: int) -> dict:
    args = ["lab", "--mode", "tiny", "--jobs", str(jobs), "--out", str(tmp_path / f"out{jobs}"), "--json"]
    for n in PAIR:
        args += ["--only", n]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return {**json.loads(r.stdout), "_stderr": r.stderr}


def test_jobs_two_matches_jobs_one(tmp_path):
    one, two = _lab(tmp_path, 1), _lab(tmp_path, 2)
    for r in (one, two):  # --json: the document alone on stdout, a progress line per experiment on stderr
        assert sorted(ln.split(":")[0] for ln in r.pop("_stderr").splitlines() if " done, " in ln) == sorted(PAIR)
    assert [x["name"] for x in two["results"]] == PAIR
    for a, b in zip(one["results"], two["results"]):
        assert a["numbers"] == b["numbers"] and a["verdict"] == b["verdict"]
    meta = json.loads((tmp_path / "out2" / "results.json").read_text())["meta"]
    assert meta["jobs"].startswith("2 experiments at once")


def test_bad_jobs_is_one_line(tmp_path):
    r = runner.invoke(app, ["lab", "--mode", "tiny", "--jobs", "0", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "--jobs must be in [1, 256], got 0" in " ".join(r.stderr.split())


def test_log_lines_when_not_a_terminal(tmp_path):
    # CliRunner's output is not a terminal, as a CI log or a cluster job's file is not: the bars
    # do not draw there, so each finished experiment is one line
    args = ["lab", "--mode", "tiny", "--jobs", "1", "--out", str(tmp_path / "o")]
    for n in PAIR:
        args += ["--only", n]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stdout.splitlines() if " done, " in ln]
    assert [ln.split(":")[0] for ln in lines] == PAIR
    assert all("/2 done" in ln and " in " in ln for ln in lines)
