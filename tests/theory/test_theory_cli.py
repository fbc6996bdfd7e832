"""``actlab theory``: values, JSON, figures, and clear errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["theory", *args])


def test_analyse_json_reference_values():
    r = run("tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05", "--depth", "10", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert round(d["q_star"], 5) == 0.41804 and round(d["chi_1"], 5) == 0.93864
    assert d["phase"] == "ordered" and d["depth"] == 10
    assert d["grad_ratio"] == pytest.approx(d["chi_1"] ** 5)


def test_analyse_table_and_params():
    r = run("leaky_relu", "--sigma-w2", "2", "--param", "negative_slope=0.5")
    assert r.exit_code == 0, r.output
    assert "chi_1" in r.output and "1.25" in r.output


def test_gains():
    r = run("--gains", "--json")
    assert r.exit_code == 0, r.output
    rows = {x["activation"]: x for x in json.loads(r.output)}
    assert rows["tanh"]["torch_gain"] == pytest.approx(5 / 3)
    r = run("--gains")
    assert r.exit_code == 0 and "selu" in r.output and "5/3" in r.output


def test_born_dead_json():
    r = run("relu", "--born-dead", "--depth", "10", "--width", "3", "--trials", "2000", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["depth"] == 10 and d["width"] == 3 and d["ci_low"] > 0.4
    r = run("relu", "--born-dead", "--depth", "10", "--width", "3", "--trials", "500")
    assert r.exit_code == 0 and "Wilson" in r.output


def test_phase_diagram_and_measure(tmp_path):
    out = tmp_path / "phase.png"
    r = run("relu", "--phase-diagram", "--grid", "6", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 1000
    r = run("tanh", "--measure", "--sigma-w2", "1.5", "--depth", "4", "--width", "64", "--seeds", "2", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert len(d["ratio"]) == 4 and d["max_deviation"] < 0.5


@pytest.mark.parametrize("args,needle", [
    (("step",), "no usable derivative"),
    (("maxout",), "not elementwise"),
    (("tanh", "--sigma-w2", "0"), "--sigma-w2"),
    (("tanh", "--sigma-w2", "-2"), "--sigma-w2"),
    (("tanh", "--sigma-b2", "-1"), "--sigma-b2"),
    (("tanh", "--depth", "0"), "--depth"),
    (("tanhh",), "Valid names"),
    (("leaky_relu", "--param", "negative_slope=3"), "negative_slope"),
    (("tanh", "--phase-diagram"), "--out"),
    (("tanh", "--born-dead"), "cannot die"),
    (("relu", "--born-dead", "--init", "bogus"), "init"),
    (("relu", "--born-dead", "--width", "0"), "--width"),
    ((), "NAME"),
])
def test_errors_exit_2(args, needle):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("new,old", [
    (("analyse", "tanh", "--sigma-w2", "1.5", "--json"), ("tanh", "--sigma-w2", "1.5", "--json")),
    (("gains", "--json"), ("--gains", "--json")),
    (("born-dead", "relu", "--depth", "4", "--width", "3", "--trials", "300", "--json"),
     ("relu", "--born-dead", "--depth", "4", "--width", "3", "--trials", "300", "--json")),
])
def test_sub_commands_and_the_old_mode_flags_agree(new, old):
    a, b = run(*new), run(*old)
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.stdout) == json.loads(b.stdout)
