"""Bad input through the real command line, in a subprocess, as a user would type it.

Every case asserts: the exit code, a one-line ``error: ...`` message on stderr (or the expected
output), no traceback anywhere, and that every file that existed before the command is unchanged
byte for byte.  Most cases fail before torch is imported, so the module stays quick.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweep_small.yaml"
CLI = [sys.executable, "-c", "from actlab.cli import main; main()"]


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env["XDG_CACHE_HOME"] = str(root / ".cache")
    env["ACTLAB_DATA"] = str(root / "no-data-here")
    env["TMPDIR"] = str(root / ".tmp")
    env.pop("ACTLAB_DEBUG", None)
    return env


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".tmp" not in p.parts and ".cache" not in p.parts}


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder holding every kind of hostile file the cases point at."""
    root = tmp_path_factory.mktemp("hostile")
    (root / ".tmp").mkdir()
    (root / "a_dir").mkdir()
    (root / "existing.txt").write_text("precious\n")
    (root / "notdb.db").write_bytes(b"this is not a database, it is a shopping list\n" * 20)
    (root / "truncated.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)
    import sqlite3

    c = sqlite3.connect(root / "foreign.db")
    c.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    c.execute("INSERT INTO invoices VALUES (1, 9.5)")
    c.commit()
    c.close()
    (root / "empty.yaml").write_text("")
    (root / "noaxes.yaml").write_text("name: nothing\n")
    (root / "bad.yaml").write_text("name: x\naxes: [activation: [relu\n")
    (root / "unknown_axis.yaml").write_text("axes:\n  colour: [red]\n")
    (root / "bad_value.yaml").write_text("axes:\n  lr: [-1]\n")
    (root / "spec.txt").write_text("axes: {}\n")
    values = ", ".join(str(i) for i in range(100))
    (root / "huge.yaml").write_text(f"axes:\n  seed: [{values}]\n  width: [{values}]\n  depth: [{values}]\n")
    (root / "tiny.yaml").write_text("axes:\n  activation: [relu]\n  steps: 2\n  data: mnist\n")
    data = root / "bad-data" / "mnist"
    data.mkdir(parents=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (data / f"{stem}.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"truncated gzip")
    return root


def actlab(room: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=room, env=_env(room), capture_output=True, text=True, timeout=timeout)


# (id, argv, expected exit code, text the one-line message must contain)
CASES: list[tuple[str, list[str], int, str]] = [
    # the catalog
    ("unknown command", ["nosuchcommand"], 2, "No such command"),
    ("unknown option", ["list", "--bogus"], 2, "No such option: --bogus"),
    ("unknown activation", ["show", "nosuch"], 2, "unknown activation 'nosuch'"),
    ("param out of range", ["show", "elu", "-p", "alpha=-1"], 2, "alpha"),
    ("param nan", ["show", "elu", "-p", "alpha=nan"], 2, "finite number"),
    ("param without =", ["show", "elu", "-p", "alpha"], 2, "is not KEY=VALUE"),
    ("param twice", ["show", "elu", "-p", "alpha=1", "-p", "alpha=2"], 2, "given twice"),
    ("param name keeps brackets", ["show", "elu", "-p", "x[bold]y=1"], 2, "x[bold]y"),
    ("plot into a folder", ["show", "elu", "--out", "a_dir"], 2, "is a folder"),
    ("plot with a wrong suffix", ["show", "elu", "--out", "plot.txt"], 2, "must end with .png"),
    ("plot under a file", ["show", "elu", "--out", "existing.txt/p.png"], 2, "is not a folder"),
    ("range reversed", ["show", "elu", "--range", "5", "1"], 2, "finite LO < HI"),
    ("range nan", ["show", "elu", "--range", "nan", "1"], 2, "finite LO < HI"),
    ("plot-all into a file", ["plot-all", "--out", "existing.txt"], 2, "is an existing file"),
    ("docs to a non-markdown file", ["docs", "--out", "existing.txt"], 2, "must end with .md"),
    # theory
    ("theory unknown activation", ["theory", "nosuch"], 2, "unknown activation"),
    ("theory sigma_w2 nan", ["theory", "relu", "--sigma-w2", "nan"], 2, "--sigma-w2 must be a finite number > 0"),
    ("theory sigma_w2 negative", ["theory", "relu", "--sigma-w2", "-1"], 2, "--sigma-w2"),
    ("theory sigma_b2 inf", ["theory", "relu", "--sigma-b2", "inf"], 2, "--sigma-b2"),
    ("theory depth 0", ["theory", "relu", "--depth", "0"], 2, "--depth must be in"),
    ("theory depth not a number", ["theory", "relu", "--depth", "many"], 2, "--depth"),
    ("theory not elementwise", ["theory", "maxout"], 2, "maxout"),
    ("phase without --out", ["theory", "phase", "tanh"], 2, "--out"),
    ("phase into a folder", ["theory", "phase", "tanh", "--out", "a_dir"], 2, "is a folder"),
    ("old phase flag into a folder", ["theory", "tanh", "--phase-diagram", "--out", "a_dir"], 2, "is a folder"),
    ("born-dead width 0", ["theory", "born-dead", "relu", "--width", "0"], 2, "--width must be in"),
    ("born-dead trials 0", ["theory", "born-dead", "relu", "--trials", "0"], 2, "--trials"),
    ("measure width 1", ["theory", "measure", "relu", "--width", "1"], 2, "--width"),
    # probe
    ("probe negative lr", ["probe", "relu", "--lr", "-1"], 2, "--lr must be a finite number > 0"),
    ("probe lr nan", ["probe", "relu", "--lr", "nan"], 2, "--lr"),
    ("probe weight scale nan", ["probe", "relu", "--weight-scale", "nan"], 2, "--weight-scale"),
    ("probe bias inf", ["probe", "relu", "--bias", "inf"], 2, "--bias"),
    ("probe saturation 2", ["probe", "relu", "--saturation", "2"], 2, "--saturation"),
    ("probe depth 1", ["probe", "relu", "--depth", "1"], 2, "--depth"),
    ("probe unknown init", ["probe", "relu", "--init", "orthogonal"], 2, "unknown --init"),
    ("probe json into a folder", ["probe", "relu", "--json-out", "a_dir"], 2, "is a folder"),
    ("probe csv under a file", ["probe", "relu", "--csv", "existing.txt/r.csv"], 2, "is not a folder"),
    ("probe plots into a file", ["probe", "relu", "--plots", "existing.txt"], 2, "is an existing file"),
    ("probe every 0", ["probe", "mlp", "relu", "--every", "0"], 2, "--every must be a positive integer"),
    ("probe run without a script", ["probe", "run", "missing.py"], 2, "no such script"),
    ("probe run report into a folder", ["probe", "run", "--html", "a_dir", "missing.py"], 2, "is a folder"),
    # sweeps
    ("spec missing", ["sweep", "missing.yaml"], 2, "spec file not found"),
    ("spec empty", ["sweep", "empty.yaml"], 2, "has no axes"),
    ("spec without axes", ["sweep", "noaxes.yaml"], 2, "has no axes"),
    ("spec does not parse", ["sweep", "bad.yaml"], 2, "does not parse"),
    ("spec unknown axis", ["sweep", "unknown_axis.yaml"], 2, "unknown axis 'colour'"),
    ("spec bad value", ["sweep", "bad_value.yaml"], 2, "lr"),
    ("spec unknown format", ["sweep", "spec.txt"], 2, "unknown format"),
    ("spec of a million configs", ["sweep", "huge.yaml"], 2, "pass --yes"),
    ("axis without =", ["sweep", "--axis", "lr"], 2, "is not NAME=V1,V2"),
    ("unknown backend", ["sweep", str(EXAMPLE), "--backend", "slurm"], 2, "unknown backend 'slurm'"),
    ("address without ray", ["sweep", str(EXAMPLE), "--address", "x:1"], 2, "--address needs --backend ray"),
    ("workers 0", ["sweep", str(EXAMPLE), "--workers", "0"], 2, "--workers"),
    ("store not sqlite", ["sweep", str(EXAMPLE), "--store", "notdb.db"], 2, "not an SQLite file"),
    ("store truncated", ["sweep", str(EXAMPLE), "--store", "truncated.db"], 2, "store 'truncated.db'"),
    ("store foreign", ["sweep", str(EXAMPLE), "--store", "foreign.db"], 2, "of something else"),
    ("store is a folder", ["sweep", str(EXAMPLE), "--store", "a_dir"], 2, "is a folder"),
    ("store under a file", ["sweep", str(EXAMPLE), "--store", "existing.txt/s.db"], 2, "is not a folder"),
    ("sweep data dir missing", ["sweep", "tiny.yaml", "--data-dir", "nowhere"], 2, "--data-dir 'nowhere'"),
    ("corrupt data file", ["sweep", "tiny.yaml", "--data-dir", "bad-data", "--store", "new/s.db"], 2,
     "is corrupt"),
    ("report store not sqlite", ["sweep", "report", "notdb.db", "--out", "r"], 2, "not an SQLite file"),
    ("report store foreign", ["sweep", "report", "foreign.db", "--out", "r"], 2, "of something else"),
    ("report store missing", ["sweep", "report", "missing.db", "--out", "r"], 2, "store not found"),
    ("report out is a file", ["sweep", "report", "foreign.db", "--out", "existing.txt"], 2, "is an existing file"),
    # lab, data
    ("lab unknown mode", ["lab", "--mode", "turbo"], 2, "unknown mode 'turbo'"),
    ("lab out is a file", ["lab", "--out", "existing.txt"], 2, "is an existing file"),
    ("run unknown experiment", ["run", "nosuch"], 2, "nosuch"),
    ("run data dir missing", ["run", "dying_relu", "--data-dir", "nowhere"], 2, "is not a directory"),
    ("run json into a folder", ["run", "dying_relu", "--json-out", "a_dir"], 2, "is a folder"),
    ("data verify unknown set", ["data", "verify", "cifar"], 2, "cifar"),
    ("data download needs no download", ["data", "download", "digits"], 2, "needs no download"),
    ("data download into a file", ["data", "download", "mnist", "--data-dir", "existing.txt"], 2,
     "is an existing file"),
    ("data verify in a file", ["data", "verify", "mnist", "--data-dir", "existing.txt"], 2, "is not a directory"),
    ("data list in a missing folder", ["data", "list", "--data-dir", "nowhere"], 2, "is not a directory"),
    # the playground
    ("play port out of range", ["play", "--port", "70000", "--no-browser"], 2, "--port must be in"),
    ("play unknown setup", ["play", "activation=nosuch[x]", "--no-browser"], 2, "setup:"),
]


@pytest.mark.parametrize("args,code,text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_changes_nothing(room: Path, args: list[str], code: int, text: str) -> None:
    before = _snapshot(room)
    r = actlab(room, *args)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert text in lines[0], lines[0]
    after = _snapshot(room)
    assert {k: after.get(k) for k in before} == before, "a file that existed before was changed"


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_overflow_is_inf_with_a_note(room: Path) -> None:
    r = actlab(room, "theory", "relu", "--sigma-w2", "4", "--depth", "5000", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    import json

    d = json.loads(r.stdout)  # strict JSON: inf is null
    assert d["grad_ratio"] is None and "overflows a float" in r.stderr


def test_unexpected_error_names_its_log(room: Path) -> None:
    # A bug is simulated by a hook the boundary does not know: one line, a log with the traceback.
    code = ("from actlab.cli import app, main\n"
            "@app.command('boom')\n"
            "def boom():\n    raise RuntimeError('kaput [red]x[/red]')\n"
            "main()")
    r = subprocess.run([sys.executable, "-c", code, "boom"], cwd=room, env=_env(room), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert line.count("\n") == 0 and "kaput [red]x[/red]" in line and "--debug" in line
    log = Path(line.split("the traceback is in ")[1].split(" (rerun")[0])
    assert "RuntimeError: kaput" in log.read_text()
    r = subprocess.run([sys.executable, "-c", code, "boom", "--debug"], cwd=room, env=_env(room),
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" in r.stderr and r.returncode == 1


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_sweep_stops_fast_and_leaves_no_workers(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / ".tmp").mkdir()
    p = subprocess.Popen([*CLI, "sweep", str(EXAMPLE), "--store", "s.db", "--workers", "2", "--chunk-size", "4",
                          "--json"], cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:  # wait until both workers run
        time.sleep(0.5)
        workers = [c for c in _children(p.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")]
    assert len(workers) == 2, "the workers never started"
    time.sleep(1.0)
    t0 = time.monotonic()
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    stopped = time.monotonic() - t0
    t1 = time.monotonic()
    while any(_alive(w) for w in workers) and time.monotonic() - t1 < 5:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "a worker outlived its driver"
    if sig == signal.SIGINT:
        assert stopped < 2.0, f"took {stopped:.1f} s to stop"
        assert p.returncode == 130 and "Traceback" not in err
        assert "of 32 configurations saved" in err and "run the same command to resume" in err
        errors = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
        assert len(errors) == 1 and errors[0].startswith("error: interrupted: "), err


def test_a_store_locked_by_another_writer_is_refused(tmp_path: Path) -> None:
    import sqlite3

    (tmp_path / ".tmp").mkdir()
    r = actlab(tmp_path, "sweep", "--axis", "activation=relu", "--axis", "steps=2", "--store", "s.db", "--json")
    assert r.returncode == 0, r.stderr
    # Snapshot first: reading the file in this process would drop the holder's POSIX lock.
    before = _snapshot(tmp_path)
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    try:
        r = actlab(tmp_path, "sweep", "--axis", "activation=relu,tanh", "--axis", "steps=2", "--store", "s.db")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: store 's.db' is locked by another process (is a sweep running on it?)"
    assert _snapshot(tmp_path)["s.db"] == before["s.db"]
