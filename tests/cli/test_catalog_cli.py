"""`actlab list`, `show`, `plot-all` and `docs` through typer's CliRunner, over the whole registry."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib
import pytest
from typer.testing import CliRunner

matplotlib.use("Agg")

from actlab.activations import get, names, specs  # noqa: E402
from actlab.cli import app  # noqa: E402
from actlab.docs import markdown, plain_formula, summary  # noqa: E402

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def run(*args: str):
    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    """Output with rich's line wrapping and table rules undone, for substring checks."""
    return " ".join(text.replace("│", " ").split())


def assert_clean_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = flat(result.stderr)
    assert text.startswith("error:")
    for n in needles:
        assert n in text, (n, text)


# ------------------------------------------------------------------ list
def test_list_table_has_one_row_per_spec():
    result = run("list", "--wide")
    assert result.exit_code == 0, result.output
    first_cells = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    rows = [c for c in first_cells if c in set(names())]
    assert rows == names()  # every spec once, in catalog order
    header = next(line for line in result.stdout.splitlines() if line.strip().startswith("name"))
    for column in ("range", "mono", "kinks", "max|f'|", "cost", "torch"):
        assert column in header
    # step and sign are flagged as not trainable by backprop in their rows
    for line in result.stdout.splitlines():
        if line.split()[:1] in (["step"], ["sign"]):
            assert " no " in line


def test_list_json_is_the_summaries():
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["name"] for d in data] == names()
    for d, s in zip(data, specs()):
        ref = s.summary()
        assert d["max_abs_derivative"] == pytest.approx(ref["max_abs_derivative"])
        assert d["kinks"] == ref["kinks"]
        assert d["torch_builtin"] == (s.builtin is not None)
        assert d["backprop"] is s.backprop


# ------------------------------------------------------------------ show
@pytest.mark.parametrize("name", names())
def test_show_writes_png_and_prints_sheet(name, tmp_path):
    out = tmp_path / "sub" / f"{name}.png"
    result = run("show", name, "--out", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    text = flat(result.stdout)
    spec = get(name)
    assert f"{spec.title} ({spec.name})" in text
    assert flat(plain_formula(spec.formula)) in text
    assert "wrote plot to" in text and out.name in text


@pytest.mark.parametrize("name", names())
def test_show_json_at_defaults(name):
    result = run("show", name, "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    spec = get(name)
    ref = json.loads(json.dumps(spec.summary()))
    for hp in d["params"]:
        assert hp["value"] == spec.defaults()[hp["name"]]
    assert d == ref


def test_show_json_recomputes_properties_at_params():
    d = json.loads(run("show", "elu", "--json", "-p", "alpha=2").stdout)
    assert d["params"][0]["value"] == 2.0 and d["params"][0]["default"] == 1.0
    assert d["output_range"] == [-2.0, "inf"]
    assert d["smooth"] is False and d["kinks"][0]["derivative"] == 2.0  # alpha != 1: f' jumps at 0
    assert d["max_abs_derivative"] == pytest.approx(2.0, rel=1e-3)
    assert d["mean_std_normal"] == pytest.approx(summary("elu", {"alpha": 2.0})["mean_std_normal"])
    assert d["mean_std_normal"] != pytest.approx(get("elu").moments.mean)

    d = json.loads(run("show", "maxout", "--json", "--param", "pieces=3").stdout)
    assert d["params"][0]["value"] == 3 and isinstance(d["params"][0]["value"], int)


def test_show_json_with_out_keeps_stdout_pure_json(tmp_path):
    out = tmp_path / "gelu.png"
    result = run("show", "gelu", "--json", "--range", "-3", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "gelu"
    assert "wrote plot to" in flat(result.stderr)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_show_accepts_aliases_and_learnable_initial_value():
    d = json.loads(run("show", "Parametric-ReLU", "--json", "-p", "negative_slope=0.1").stdout)
    assert d["name"] == "prelu" and d["params"][0]["value"] == 0.1
    assert d["kinks"][0]["derivative"] == pytest.approx(0.1)


def test_show_without_out_prints_sheet_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("show", "sigmoid")
    assert result.exit_code == 0
    assert "wrote" not in result.stdout and not list(tmp_path.iterdir())
    assert "0.25" in result.stdout  # max |f'|


# ------------------------------------------------------------------ errors
def test_unknown_name_lists_names_and_closest_match():
    result = run("show", "reluu")
    assert_clean_error(result, "unknown activation 'reluu'", "Did you mean 'relu'?", *names())


def test_bad_param_key_names_it_and_the_valid_keys():
    assert_clean_error(run("show", "leaky_relu", "-p", "slope=0.1"), "'slope'", "negative_slope in [0, 1)")
    assert_clean_error(run("show", "elu", "-p", "alpah=2"), "'alpah'", "Did you mean 'alpha'?")
    assert_clean_error(run("show", "relu", "-p", "alpha=1"), "relu has no hyperparameter 'alpha'", "no hyperparameters")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["leaky_relu", "-p", "negative_slope=2"], ["'negative_slope'", "[0, 1)", "2"]),
        (["elu", "-p", "alpha=0"], ["'alpha'", "(0, inf)"]),
        (["elu", "-p", "alpha=abc"], ["alpha=abc", "finite number", "(0, inf)"]),
        (["softplus", "-p", "beta=inf"], ["beta=inf", "finite number"]),
        (["maxout", "-p", "pieces=2.5"], ["'pieces'", "integer in [1, inf)"]),
        (["hardtanh", "-p", "min_val=2"], ["min_val (2) must be below max_val (1)"]),
    ],
)
def test_bad_param_value_names_it_and_its_range(args, needles):
    assert_clean_error(run("show", *args), *needles)


@pytest.mark.parametrize("bad", ["0.1", "=0.1", "alpha=", "alpha"])
def test_malformed_param(bad):
    assert_clean_error(run("show", "elu", "--param", bad), "is not KEY=VALUE", "alpha in (0, inf)")


def test_repeated_param_and_bad_range_and_bad_suffix(tmp_path):
    assert_clean_error(run("show", "elu", "-p", "alpha=1", "-p", "alpha=2"), "'alpha' is given twice")
    assert_clean_error(run("show", "elu", "--range", "2", "1"), "--range needs finite LO < HI")
    assert_clean_error(run("show", "elu", "--out", str(tmp_path / "x.jpg")), ".png")


# ------------------------------------------------------------------ plot-all and docs
def test_plot_all_writes_the_grid(tmp_path):
    result = run("plot-all", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = (tmp_path / "activations.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 50_000
    assert f"{len(specs())} panels" in result.stdout


def test_docs_page_is_up_to_date_with_the_registry():
    page = REPO / "docs" / "activations.md"
    assert page.read_text(encoding="utf-8") == markdown(), (
        "docs/activations.md is stale: run `actlab docs --out docs/activations.md`")
    assert (REPO / "docs" / "activations.png").read_bytes()[:8] == PNG_MAGIC


def test_docs_command_writes_the_page(tmp_path):
    out = tmp_path / "cat.md"
    result = run("docs", "--out", str(out), "--no-image")
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text == markdown(image=None)
    table_rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `(\w+)`", r)[1] for r in table_rows] == names()
    # an unescaped | inside a cell would add columns: every row has the header's 7 cells
    assert all(len(re.split(r"(?<!\\)\|", r)) == 9 for r in table_rows)


def test_plain_formula_leaves_no_latex():
    for s in specs():
        for f in (s.formula, s.derivative_formula):
            text = plain_formula(f)
            assert "\\" not in text and "{" not in text.replace("{-1, 0, 1}", ""), (s.name, text)
    assert plain_formula(r"\frac{1}{1 + e^{-x}}") == "1/(1 + e^(-x))"
    assert math.isclose(summary("relu")["max_abs_derivative"], 1.0)


def test_list_fits_80_columns_by_default():
    result = run("list")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert [c for c in (line.split()[0] for line in result.stdout.splitlines() if line.strip())
            if c in set(names())] == names()
