"""``actlab data``: list, verify against the checksums, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()
SHARED = Path(os.environ.get("ACTLAB_TEST_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


def test_list_json_names_every_dataset(tmp_path):
    r = runner.invoke(app, ["data", "list", "--json", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rows = {d["name"]: d for d in json.loads(r.stdout)["datasets"]}
    assert {"digits", "mnist", "fashion_mnist", "spirals"} <= set(rows)
    assert rows["digits"]["available"] is True
    assert rows["mnist"]["available"] is False  # empty data dir


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared MNIST files not present")
def test_verify_shared_fashion_mnist():
    r = runner.invoke(app, ["data", "verify", "fashion_mnist", "--data-dir", str(SHARED)])
    assert r.exit_code == 0, r.output
    assert r.output.count(": ok") == 4


def test_verify_missing_files_fails(tmp_path):
    r = runner.invoke(app, ["data", "verify", "mnist", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert "missing" in r.output


def test_unknown_dataset_names_choices():
    r = runner.invoke(app, ["data", "verify", "mnsit"])
    assert r.exit_code == 2
    assert "mnist" in r.output and "Valid names" in r.output
