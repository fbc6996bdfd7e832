"""``actlab probe``: trains an MLP on digits with the probe and prints the findings."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()


def test_probe_cli_finds_vanishing_gradients_and_writes_outputs(tmp_path):
    res = runner.invoke(app, ["probe", "sigmoid", "--depth", "8", "--lr", "0.1", "--steps", "12", "--window", "5",
                              "--json-out", str(tmp_path / "p.json"), "--plots", str(tmp_path / "plots")],
                        env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "vanishing gradients" in res.output and "sigmoid" in res.output
    doc = json.loads((tmp_path / "p.json").read_text())
    assert {f["kind"] for f in doc["findings"]} >= {"vanishing_gradients"}
    assert len(list((tmp_path / "plots").glob("*.png"))) == 4


def test_probe_cli_healthy_relu_has_no_findings():
    res = runner.invoke(app, ["probe", "relu", "--init", "he", "--steps", "20", "--window", "10"],
                        env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "no findings" in res.output


def test_probe_cli_bad_input_is_a_clear_message():
    res = runner.invoke(app, ["probe", "relux"])
    assert res.exit_code == 2 and "unknown activation 'relux'" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["probe", "relu", "--every", "0"])
    assert res.exit_code == 2 and "every must be a positive integer" in res.output
    res = runner.invoke(app, ["probe", "relu", "--init", "orthogonal"])
    assert res.exit_code == 2 and "choose from default, he, xavier" in res.output
