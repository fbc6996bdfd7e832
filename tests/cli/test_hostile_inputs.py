"""Bad input through the real command line, in a subprocess, as a user would type it.

Every case asserts: the exit code, a one-line ``error: ...`` message on stderr (or the expected
output), no traceback anywhere, and that every file that existed before the command is unchanged
byte for byte.  Most cases fail before torch is imported, so the module stays quick.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
    import gzip

    crc = root / "crc-data" / "mnist"  # whole gzip files whose CRC does not match their bytes
    swapped = root / "swapped-data" / "mnist"  # sound gzip files holding other data (as when swapped)
    for folder in (crc, swapped):
        folder.mkdir(parents=True)
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for i, stem in enumerate(stems):
        raw = gzip.compress(bytes(range(256)) * 40)
        (crc / f"{stem}.gz").write_bytes(raw[:-8] + b"\x00\x00\x00\x00" + raw[-4:])
        (swapped / f"{stem}.gz").write_bytes(gzip.compress((data / f"{stems[(i + 1) % 4]}.gz").read_bytes() * 100))
    (root / "raises.py").write_text("raise ValueError('boom [x]')\n")
    (root / "syntax.py").write_text("def f(:\n")
    from actlab.sweep.spec import parse_spec
    from actlab.sweep.store import Store

    with Store(root / "good.db") as st:  # a sound store, one sweep registered
        st.add_sweep(parse_spec({"name": "good", "axes": {"activation": ["relu"], "steps": 2}}))
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
    # --- added in the second pass over the list (every command, every option type)
    # places root cannot write either (a read-only mount is below, where it can be made)
    ("store under /proc", ["sweep", str(EXAMPLE), "--store", "/proc/actlab-test/s.db"], 2, "not writable"),
    ("sweep json-out under /sys", ["sweep", str(EXAMPLE), "--store", "w/s.db", "--json-out", "/sys/a.json"], 2,
     "not writable"),
    ("report out under /sys", ["sweep", "report", "foreign.db", "--out", "/sys/actlab-report"], 2, "not writable"),
    ("probe csv under /proc", ["probe", "relu", "--csv", "/proc/actlab.csv"], 2, "not writable"),
    ("docs under /proc", ["docs", "--out", "/proc/actlab.md"], 2, "not writable"),
    ("lab out under /sys", ["lab", "--out", "/sys/actlab-report"], 2, "not writable"),
    # data files: a CRC error, sound files holding other data
    ("data file with a bad CRC", ["sweep", "tiny.yaml", "--data-dir", "crc-data", "--store", "new/c.db"], 2,
     "is corrupt"),
    ("swapped data files", ["sweep", "tiny.yaml", "--data-dir", "swapped-data", "--store", "new/w.db"], 2,
     "is corrupt"),
    ("report of an unknown sweep", ["sweep", "report", "good.db", "--out", "r", "--spec", "zz%"], 2,
     "spec hash 'zz%' matches 0 sweeps"),
    # the catalog
    ("param value not a number", ["show", "elu", "-p", "alpha=abc"], 2, "alpha must be a finite number"),
    ("param of an activation without any", ["show", "relu", "-p", "alpha=1"], 2, "no hyperparameter 'alpha'"),
    ("range infinite", ["show", "elu", "--range", "inf", "1"], 2, "finite LO < HI"),
    ("plot-all cols 0", ["plot-all", "--cols", "0"], 2, "--cols"),
    # theory
    ("theory unknown param", ["theory", "analyse", "relu", "-p", "foo=1"], 2, "no hyperparameter 'foo'"),
    ("theory sigma_b2 negative", ["theory", "relu", "--sigma-b2", "-1"], 2, "--sigma-b2 must be"),
    ("born-dead unknown init", ["theory", "born-dead", "relu", "--init", "bogus"], 2, "unknown init 'bogus'"),
    ("born-dead sigma_w2 nan", ["theory", "born-dead", "relu", "--sigma-w2", "nan"], 2, "--sigma-w2"),
    ("measure seeds 0", ["theory", "measure", "relu", "--seeds", "0"], 2, "--seeds must be in"),
    ("measure too deep", ["theory", "measure", "relu", "--depth", "2000"], 2, "--depth in [1, 1000]"),
    # probe
    ("probe --json given a path (it is a flag)", ["probe", "relu", "--json", "out.json"], 2,
     "unexpected extra argument"),
    ("probe steps 0", ["probe", "mlp", "relu", "--steps", "0"], 2, "--steps must be a positive integer"),
    ("probe width 0", ["probe", "mlp", "relu", "--width", "0"], 2, "--width"),
    ("probe window 0", ["probe", "mlp", "relu", "--window", "0"], 2, "--window"),
    ("probe unknown param", ["probe", "mlp", "relu", "-p", "alpha=1"], 2, "no hyperparameter 'alpha'"),
    ("probe saturation 0", ["probe", "mlp", "relu", "--saturation", "0"], 2, "--saturation"),
    ("probe run: the script raises", ["probe", "run", "raises.py"], 1, "raises.py raised ValueError: boom [x]"),
    ("probe run: the script does not parse", ["probe", "run", "syntax.py"], 1, "raised SyntaxError"),
    ("probe run every 0", ["probe", "run", "--every", "0", "raises.py"], 2, "--every"),
    # sweeps
    ("chunk size 0", ["sweep", str(EXAMPLE), "--chunk-size", "0"], 2, "--chunk-size"),
    ("workers 65", ["sweep", str(EXAMPLE), "--workers", "65"], 2, "--workers must be in [1, 64]"),
    ("axis value not a number", ["sweep", "--axis", "lr=abc"], 2, "lr: must be a number"),
    ("axis unknown activation", ["sweep", "--axis", "activation=nosuch"], 2, "unknown activation 'nosuch'"),
    ("axis without values", ["sweep", "--axis", "lr="], 2, "is not NAME=V1,V2"),
    ("axis nan", ["sweep", "--axis", "lr=nan"], 2, "lr: must be a finite number"),
    ("width beyond memory", ["sweep", "--axis", "width=100000000", "--store", "w/s.db"], 2,
     "width: must be an integer in [1, 16384]"),
    ("model beyond memory", ["sweep", "--axis", "width=5000", "--axis", "depth=100", "--store", "w/s.db"], 2,
     "a sweep model may hold"),
    ("seed beyond 64 bits", ["sweep", "--axis", "seed=99999999999999999999999", "--store", "w/s.db"], 2,
     "seed: must be an integer"),
    ("mnist missing: the message names --data-dir", ["sweep", "tiny.yaml", "--store", "new/m.db"], 2, "--data-dir"),
    ("report of a text file", ["sweep", "report", "existing.txt", "--out", "r"], 2, "not an SQLite file"),
    # lab, data, playground
    ("lab unknown experiment", ["lab", "--only", "nosuch"], 2, "unknown experiment 'nosuch'"),
    ("lab data dir missing", ["lab", "--data-dir", "nowhere"], 2, "is not a directory"),
    ("run unknown mode", ["run", "dying_relu", "--mode", "turbo"], 2, "unknown mode 'turbo'"),
    ("run out is a file", ["run", "dying_relu", "--out", "existing.txt"], 2, "is an existing file"),
    ("data download unknown set", ["data", "download", "nosuch"], 2, "unknown data set 'nosuch'"),
    ("data list in a file", ["data", "list", "--data-dir", "existing.txt"], 2, "is not a directory"),
    ("play port negative", ["play", "--port", "-1", "--no-browser"], 2, "--port must be in"),
    ("play setup not a number", ["play", "depth=abc", "--no-browser"], 2, "depth must be a number"),
    ("play host that cannot be bound", ["play", "--host", "256.1.1.1", "--no-browser"], 2,
     "cannot listen on 256.1.1.1"),
]
if importlib.util.find_spec("ray") is not None:  # without ray these stop at "needs ray"
    CASES += [
        ("ray address refusing", ["sweep", str(EXAMPLE), "--backend", "ray", "--address", "127.0.0.1:1",
                                  "--store", "w/r.db"], 2, "nothing answers at '127.0.0.1:1'"),
        ("ray address malformed", ["sweep", str(EXAMPLE), "--backend", "ray", "--address", "nonsense",
                                   "--store", "w/r.db"], 2, "is not HOST:PORT"),
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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
    except OSError:
        return ""


def _stop_and_wait(p: subprocess.Popen, sig: signal.Signals, procs: list[int], timeout: float,
                   grace: float) -> tuple[str, str, float, float, dict[int, str]]:
    """Send ``sig`` to ``p``; wait up to ``timeout`` s for it and then up to ``grace`` s for ``procs``.

    Returns ``(stdout, stderr, seconds until p ended, seconds until procs ended, {pid: cmdline} of
    the processes still alive)``.
    """
    t0 = time.monotonic()
    p.send_signal(sig)
    out, err = p.communicate(timeout=timeout)
    stopped = time.monotonic() - t0
    t1 = time.monotonic()
    while any(_alive(w) for w in procs) and time.monotonic() - t1 < grace:
        time.sleep(0.05)
    left = {w: _cmdline(w)[:80] for w in procs if _alive(w)}
    return out, err, stopped, time.monotonic() - t0, left


def _spawned_workers(pid: int) -> list[int]:
    return [c for c in _children(pid) if "spawn_main" in _cmdline(c)]


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
        workers = _spawned_workers(p.pid)
    assert len(workers) == 2, "the workers never started"
    time.sleep(1.0)
    out, err, stopped, _, left = _stop_and_wait(p, sig, workers, timeout=30, grace=5)
    assert not left, f"a worker outlived its driver: {left}"
    if sig == signal.SIGINT:
        assert stopped < 2.0, f"took {stopped:.1f} s to stop"
        assert p.returncode == 130 and "Traceback" not in err
        assert "of 32 configurations saved" in err and "run the same command to resume" in err
        errors = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
        assert len(errors) == 1 and errors[0].startswith("error: interrupted: "), err


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_lab_stops_its_workers_and_keeps_what_finished(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / ".tmp").mkdir()
    names = ["lstm_vs_rnn", "dead_vs_dropout", "dying_relu", "relu_cnn_epochs"]
    # SIGINT ignored, as a shell script's background job inherits it: the driver must set its own handler
    p = subprocess.Popen([*CLI, "lab", "--mode", "tiny", "--jobs", "2", "--out", "rep",
                          *[a for n in names for a in ("--only", n)]], cwd=tmp_path, env=_env(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 240
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2 and p.poll() is None:
        time.sleep(0.2)
        workers = _spawned_workers(p.pid)
    assert len(workers) == 2, f"the workers never started (exit {p.poll()})"
    time.sleep(1.0)
    out, err, stopped, gone, left = _stop_and_wait(p, sig, workers, timeout=30, grace=5)
    assert not left, f"a worker outlived its driver: {left}"
    assert stopped < 10.0, f"took {stopped:.1f} s to stop"
    assert p.returncode == 130 and "Traceback" not in err, err
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: interrupted: "), err
    assert "to run the rest: actlab lab --mode tiny --only " in " ".join(err.split())


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


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_ray_sweep_stops_its_ray_processes(tmp_path: Path, sig: signal.Signals) -> None:
    pytest.importorskip("ray", reason="ray is not installed (the integration extra)")
    import shutil

    from actlab._procs import descendants
    import tempfile

    (tmp_path / ".tmp").mkdir()
    env = _env(tmp_path)
    # Ray's sockets live under its temp folder, whose path must stay short (a Unix socket path
    # holds ~107 bytes), and a folder of our own keeps this Ray instance apart from any other.
    ray_tmp = tempfile.mkdtemp(prefix="ar", dir="/tmp")
    env["RAY_TMPDIR"] = ray_tmp
    env.pop("RAY_ADDRESS", None)
    p = subprocess.Popen([*CLI, "sweep", str(EXAMPLE), "--store", "s.db", "--backend", "ray", "--chunk-size", "4",
                          "--json"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        busy: list[int] = []
        while time.monotonic() < deadline and not busy and p.poll() is None:  # wait for a task to run
            time.sleep(0.5)
            busy = [c for c in descendants(p.pid) if "train_chunk" in _cmdline(c)]
        assert busy, f"no Ray task started (exit {p.poll()})"
        time.sleep(1.0)
        out, err, stopped, gone, left = _stop_and_wait(p, sig, descendants(p.pid), timeout=60, grace=10)
        assert not left, f"Ray processes outlived the driver: {left}"
        if sig != signal.SIGKILL:
            assert stopped < 2.0, f"took {stopped:.1f} s to stop"
            assert gone < 2.0, f"Ray's processes took {gone:.1f} s to stop"
            assert p.returncode == 128 + sig and "Traceback" not in err, err
            assert "of 32 configurations saved" in err and "run the same command to resume" in err, err
            errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and errors[0].startswith("error: interrupted: "), err
    finally:
        if p.poll() is None:
            p.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)


# ------------------------------------------------------------------ read-only places
# We run as root, and permission bits do not stop root: the places root cannot write are a
# read-only mount (made here in a private mount namespace with `unshare -m`, so it vanishes with
# the command and nothing is left behind), and /proc and /sys (in CASES above as well).
_RO_WRAP = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'


def _can_mount_read_only(folder: Path) -> bool:
    import shutil

    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-m", "sh", "-c", _RO_WRAP, str(folder), "sh", "-c", f"! touch {folder}/probe"],
                       capture_output=True, timeout=30)
    return r.returncode == 0 and not (folder / "probe").exists()


@pytest.fixture(scope="module")
def ro_room(room: Path) -> Path:
    """``room`` with a folder ``ro`` (a finished store ``s.db`` and a file in it) that the commands
    see mounted read-only."""
    ro = room / "ro"
    ro.mkdir(exist_ok=True)
    if not _can_mount_read_only(ro):
        pytest.skip("cannot make a read-only mount here (needs Linux, util-linux unshare and CAP_SYS_ADMIN)")
    if not (ro / "s.db").exists():
        r = actlab(room, "sweep", "--axis", "activation=relu", "--axis", "steps=2", "--axis", "width=4",
                   "--store", "ro/s.db", "--json")
        assert r.returncode == 0, r.stderr
    (ro / "existing.json").write_text("{}\n")
    return room


def actlab_read_only(room: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``actlab ARGS`` in ``room``, with ``room/ro`` mounted read-only for this command alone."""
    return subprocess.run(["unshare", "-m", "sh", "-c", _RO_WRAP, str(room / "ro"), *CLI, *args], cwd=room,
                          env=_env(room), capture_output=True, text=True, timeout=timeout)


READ_ONLY_CASES: list[tuple[str, list[str], str]] = [
    ("new store in a read-only folder", ["sweep", str(EXAMPLE), "--store", "ro/new.db"], "not writable"),
    ("existing store on a read-only mount", ["sweep", str(EXAMPLE), "--store", "ro/s.db"],
     "Read-only file system"),
    ("sweep json-out read-only", ["sweep", str(EXAMPLE), "--store", "w/s.db", "--json-out", "ro/s.json"],
     "not writable"),
    ("report into a read-only folder", ["sweep", "report", "ro/s.db", "--out", "ro/rep"], "not writable"),
    ("report json-out read-only", ["sweep", "report", "ro/s.db", "--out", "rep", "--json-out", "ro/r.json"],
     "not writable"),
    ("probe json-out read-only", ["probe", "relu", "--json-out", "ro/p.json"], "not writable"),
    ("probe json-out over a read-only file", ["probe", "relu", "--json-out", "ro/existing.json"],
     "Read-only file system"),
    ("probe csv read-only", ["probe", "relu", "--csv", "ro/p.csv"], "not writable"),
    ("probe plots read-only", ["probe", "relu", "--plots", "ro/plots"], "not writable"),
    ("probe html read-only", ["probe", "relu", "--html", "ro/p.html"], "not writable"),
    ("probe run html read-only", ["probe", "run", "--html", "ro/r.html", "missing.py"], "not writable"),
    ("show plot read-only", ["show", "elu", "--out", "ro/p.png"], "not writable"),
    ("plot-all read-only", ["plot-all", "--out", "ro"], "not writable"),
    ("docs read-only", ["docs", "--out", "ro/a.md"], "not writable"),
    ("theory phase read-only", ["theory", "phase", "tanh", "--out", "ro/p.png"], "not writable"),
    ("theory measure read-only", ["theory", "measure", "relu", "--out", "ro/m.png"], "not writable"),
    ("lab out read-only", ["lab", "--out", "ro/rep"], "not writable"),
    ("lab json-out read-only", ["lab", "--json-out", "ro/l.json"], "not writable"),
    ("run out read-only", ["run", "dying_relu", "--out", "ro/r"], "not writable"),
    ("run json-out read-only", ["run", "dying_relu", "--json-out", "ro/r.json"], "not writable"),
    ("data download read-only", ["data", "download", "mnist", "--data-dir", "ro/data"], "not writable"),
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read-only mounts need Linux")
@pytest.mark.parametrize("args,text", [c[1:] for c in READ_ONLY_CASES], ids=[c[0] for c in READ_ONLY_CASES])
def test_read_only_places_give_one_line_and_change_nothing(ro_room: Path, args: list[str], text: str) -> None:
    before = _snapshot(ro_room)
    r = actlab_read_only(ro_room, *args)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert text in lines[0], lines[0]
    after = _snapshot(ro_room)
    assert {k: after.get(k) for k in before} == before, "a file that existed before was changed"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read-only mounts need Linux")
def test_a_store_on_a_read_only_mount_can_be_reported(ro_room: Path) -> None:
    before = _snapshot(ro_room)
    r = actlab_read_only(ro_room, "sweep", "report", "ro/s.db", "--out", "ro-report", "--json")
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads(r.stdout)["configs"] == 1
    assert _snapshot(ro_room)["ro/s.db"] == before["ro/s.db"]
