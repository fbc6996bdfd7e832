"""``actlab probe mlp`` (an MLP on digits through the lab, probed) and ``actlab probe run`` (your script)."""

from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from actlab.cli import app

runner = CliRunner()


def test_probe_mlp_finds_vanishing_gradients_and_writes_outputs(tmp_path):
    res = runner.invoke(app, ["probe", "mlp", "sigmoid", "--depth", "8", "--lr", "0.1", "--steps", "12", "--window",
                              "5", "--json-out", str(tmp_path / "p.json"), "--plots", str(tmp_path / "plots"),
                              "--html", str(tmp_path / "r.html")], env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "vanishing gradients" in res.output and "sigmoid" in res.output
    doc = json.loads((tmp_path / "p.json").read_text())
    assert {f["kind"] for f in doc["findings"]} >= {"vanishing_gradients"}
    assert len(list((tmp_path / "plots").glob("*.png"))) == 4
    page = (tmp_path / "r.html").read_text()
    assert "vanishing gradients" in page and "data:image/png;base64," in page


def test_probe_mlp_json_goes_to_stdout():
    res = runner.invoke(app, ["probe", "mlp", "relu", "--init", "he", "--steps", "5", "--window", "5", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["records"] and "findings" in doc


def test_probe_mlp_healthy_relu_has_no_warning():
    res = runner.invoke(app, ["probe", "mlp", "relu", "--init", "he", "--steps", "20", "--window", "10"],
                        env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "[warning]" not in res.output and "[error]" not in res.output, res.output


def test_probe_mlp_bad_input_is_a_clear_message():
    res = runner.invoke(app, ["probe", "mlp", "relux"])
    assert res.exit_code == 2 and "unknown activation 'relux'" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["probe", "mlp", "relu", "--every", "0"])
    assert res.exit_code == 2 and "every must be a positive integer" in res.output
    res = runner.invoke(app, ["probe", "mlp", "relu", "--init", "orthogonal"])
    assert res.exit_code == 2 and "choose from default, he, xavier, critical" in res.output


SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.nn.functional as F
    from torch import nn

    steps = int(sys.argv[sys.argv.index("--steps") + 1])
    torch.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(9) for m in (nn.Linear(32, 32), nn.Sigmoid())], nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(steps):
        x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    print("script done")
''')


def test_probe_run_probes_a_users_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "report.html"
    res = runner.invoke(app, ["probe", "run", "--html", str(out), str(script), "--steps", "25"],
                        env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "script done" in res.output and "vanishing gradients" in res.output
    page = out.read_text()
    assert "Sequential in train.py" in page and "vanishing gradients" in page


def test_probe_run_errors(tmp_path):
    res = runner.invoke(app, ["probe", "run", str(tmp_path / "missing.py")])
    assert res.exit_code == 2 and "no such script" in res.output
    idle = tmp_path / "idle.py"
    idle.write_text("print('no training here')\n")
    res = runner.invoke(app, ["probe", "run", str(idle)])
    assert res.exit_code == 1 and "nothing to probe" in res.output
