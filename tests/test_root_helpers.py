"""The root helpers every floor shares: atomic writes, the JSON convention, the number formatter,
the KEY=VALUE parser, the thread context, and the lazy top-level package."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actlab._format import number
from actlab._io import OutputError, check_output, write_atomic
from actlab._json import dumps, jsonable
from actlab._kv import PairError, parse_pairs
from actlab._threads import torch_threads

SRC = Path(__file__).resolve().parents[1] / "src"


def test_write_atomic_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "r.json"
    write_atomic(p, "one")
    write_atomic(p, b"two")
    assert p.read_text() == "two" and sorted(x.name for x in p.parent.iterdir()) == ["r.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would make it, not mkstemp's 0600
    p.chmod(0o640)
    write_atomic(p, "three")
    assert p.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode


def test_write_atomic_falls_back_to_a_named_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*the result is saved in (\S+)") as e:
        write_atomic(blocker / "r.json", "finished result")
    saved = Path(str(e.value).split("saved in ")[1])
    assert saved.read_text() == "finished result" and saved.parent == tmp_path / "tmp"


@pytest.mark.parametrize("target,kind,match", [
    ("a_dir", "file", "is a folder"), ("f.txt", "dir", "is an existing file"),
    ("f.txt/x.json", "file", "is not a folder"), ("x.txt", "file", "must end with .png"),
])
def test_check_output_refuses_before_any_work(tmp_path: Path, target: str, kind: str, match: str) -> None:
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "f.txt").write_text("keep")
    with pytest.raises(OutputError, match=match):
        check_output(tmp_path / target, kind=kind, suffixes=(".png",) if target == "x.txt" else ())
    assert (tmp_path / "f.txt").read_text() == "keep"
    assert check_output(tmp_path / "new" / "deeper" / "r.png", suffixes=(".png",)).name == "r.png"


def test_json_writes_nan_and_inf_as_null_and_numpy_as_numbers() -> None:
    import torch

    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float32(2.5), "d": np.arange(2),
            "e": torch.tensor([1.0, float("nan")]), 3: (True, None)}
    assert json.loads(dumps(data)) == {"a": None, "b": [None, None, 1.5], "c": 2.5, "d": [0, 1],
                                       "e": [1.0, None], "3": [True, None]}
    assert jsonable(math.nan) is None


@pytest.mark.parametrize("v,digits,sci,text", [
    (0.123456, 4, False, "0.1235"), (math.inf, 4, False, "inf"), (-math.inf, 4, False, "-inf"),
    (math.nan, 4, False, "n/a"), (None, 4, False, "-"), (3, 4, False, "3"), (0.0, 4, False, "0"),
    (3.2e-5, 3, True, "3.2e-05"), (12345.0, 3, True, "1.2e+04"), (0.5 * (1 + 1e-12), 4, False, "0.5"),
    (np.float32(0.25), 4, False, "0.25"),
])
def test_number(v, digits: int, sci: bool, text: str) -> None:
    assert number(v, digits, sci=sci) == text


def test_parse_pairs() -> None:
    assert parse_pairs([" a = 1", "b=x,y"], option="--param") == {"a": "1", "b": "x,y"}
    with pytest.raises(PairError, match=r"--param 'a' is not KEY=VALUE; valid: b"):
        parse_pairs(["a"], option="--param", hint="valid: b")
    with pytest.raises(PairError, match="given twice"):
        parse_pairs(["a=1", "a=2"], option="--param")
    with pytest.raises(PairError, match="is not NAME=V1"):
        parse_pairs(["=1"], option="--axis", form="NAME=V1,V2,...")


def test_torch_threads_restores_the_setting() -> None:
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_cli_help_and_import_actlab_do_not_import_torch() -> None:
    code = ("import sys\nimport actlab, actlab.cli\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "from actlab.cli.app import app\nimport typer\nfrom typer.testing import CliRunner\n"
            "for args in (['--help'], ['probe', '--help'], ['sweep', 'run', '--help'], ['theory', 'phase', '--help']):\n"
            "    r = CliRunner().invoke(app, args)\n    assert r.exit_code == 0, r.output\n"
            "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
            "assert actlab.Probe.__name__ == 'Probe' and actlab.nn.Mish and actlab.functional.relu\n"
            "assert 'torch' in sys.modules\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr


def test_usable_cores_is_the_affinity_mask() -> None:
    from actlab._workers import usable_cores

    want = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cores() == want >= 1
