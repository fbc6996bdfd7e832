"""``actlab sweep`` (run, report, errors) through typer's test runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()
SPEC = """
name: clitest
axes:
  activation: [relu, tanh]
  depth: [1, 2]
  lr: [0.1, 10000.0]
  width: 8
  steps: 12
  batch_size: 16
record: {every: 4, target_loss: 2.0}
"""


def test_run_then_report(tmp_path):
    spec, db, out = tmp_path / "s.yaml", tmp_path / "s.db", tmp_path / "rep"
    spec.write_text(SPEC)
    r = runner.invoke(app, ["sweep", str(spec), "--store", str(db), "--json"])  # `sweep SPEC` = `sweep run SPEC`
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["configs"] == 8 and sum(summary["status"].values()) == 8
    r = runner.invoke(app, ["sweep", "run", str(spec), "--store", str(db)])
    assert r.exit_code == 0 and "done" in r.output
    r = runner.invoke(app, ["sweep", "report", str(db), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["configs"] == 8 and rep["heatmap_columns"] == ["depth", "lr"]
    pngs = sorted(p.name for p in out.glob("*.png"))
    for metric in ("train_loss", "steps_to_batch_loss", "inactive"):
        for col in ("depth", "lr"):
            assert f"heatmap_{metric}_by_{col}.png" in pngs
    assert all((out / p).stat().st_size > 1000 for p in pngs)
    md = (out / "table.md").read_text()
    assert md.startswith("| label |") and md.count("\n") == 2 + 8
    assert len(rep["table"]) == 8


def test_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, needle in (("axes: {activation: [relu, swishy]}", "unknown activation 'swishy'"),
                         ("axes: {width: -4}", "width: must be an integer in [1, 16384], got -4"),
                         ("axes: {depht: 2}", "unknown axis 'depht'; valid axes: activation, depth")):
        bad.write_text(text)
        r = runner.invoke(app, ["sweep", "run", str(bad)])
        assert r.exit_code == 2 and needle in " ".join(r.output.split()), r.output
        assert "Traceback" not in r.output
    good = tmp_path / "g.yaml"
    good.write_text(SPEC)
    r = runner.invoke(app, ["sweep", "run", str(good), "--backend", "spark"])
    assert r.exit_code == 2 and "valid backends: local, ray" in r.output
    r = runner.invoke(app, ["sweep", "report", str(tmp_path / "none.db"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "store not found" in r.output
    r = runner.invoke(app, ["sweep", "run", "--axis", "lr"])
    assert r.exit_code == 2 and "NAME=V1,V2" in r.output


def test_axes_from_flags(tmp_path):
    db = tmp_path / "f.db"
    r = runner.invoke(app, ["sweep", "run", "--axis", "activation=relu,tanh", "--axis", "width=4", "--axis", "steps=3",
                            "--axis", "batch_size=8", "--name", "flagged", "--store", str(db), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["configs"] == 2 and out["status"] == {"done": 2}


def test_report_table_fits_80_columns_unless_wide(tmp_path):
    spec, db = tmp_path / "s.yaml", tmp_path / "s.db"
    spec.write_text(SPEC)
    assert runner.invoke(app, ["sweep", str(spec), "--store", str(db), "--json"]).exit_code == 0
    r = runner.invoke(app, ["sweep", "report", str(db), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()[1:]  # below the "wrote N files to DIR" line
    assert max(len(line) for line in lines) <= 80, r.output
    header = next(line for line in lines if "label" in line)
    assert all(h in header for h in ("depth", "lr", "runs", "test error", "train loss", "inactive")), header
    assert "steps to batch loss" not in header and "saturated" not in header
    assert "--wide adds" in r.output
    assert len([line for line in lines if line.split()[:1] in (["relu"], ["tanh"])]) == 8  # one row per config
    r = runner.invoke(app, ["sweep", "report", str(db), "--out", str(tmp_path / "rep"), "--wide"])
    assert r.exit_code == 0, r.output
    assert "steps to batch loss" in r.output and "saturated" in r.output and "reached" in r.output
    md = (tmp_path / "rep" / "table.md").read_text()  # the file keeps every column
    for col in ("steps_to_batch_loss", "saturated", "train_loss_std", "test_error_std", "reached_batch_loss"):
        assert col in md.splitlines()[0]
