"""benchmarks/side_by_side.py: its statistics, its plumbing (a scripted run in place of the worker
process) and one real run of the three workloads against the old code at tiny sizes.

No timing is asserted: the figures of a shared test machine mean nothing; what is held is that
the runner pairs, orders, reads and judges what the runs report."""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "side_by_side.py"


@pytest.fixture(scope="module")
def sbs() -> Any:
    spec = importlib.util.spec_from_file_location("side_by_side", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_median_interval_is_the_order_statistic_interval(sbs: Any) -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert sbs.median_interval(xs, 0.90) == (1.0, 5.0, pytest.approx(1 - 2 / 32))
    assert sbs.median_interval(xs[:4], 0.90) is None  # [min, max] of 4 covers 87.5 %
    eight = [float(i) for i in range(8)]
    # k = 2: 1 - 2 (C(8,0) + C(8,1)) / 256 = 0.9297; k = 3 would cover 0.711
    assert sbs.median_interval(eight, 0.90) == (1.0, 6.0, pytest.approx(1 - 2 * 9 / 256))


def test_verdicts(sbs: Any) -> None:
    ones = [1.0] * 5
    assert sbs.summarise(ones, [1.10] * 5, False, True)["verdict"] == "slower"
    assert sbs.summarise(ones, [1.01] * 5, False, True)["verdict"] == "not slower"
    # a rate: fewer per second is slower, and the ratio is old / new
    r = sbs.summarise([100.0] * 5, [90.0] * 5, True, True)
    assert r["verdict"] == "slower" and r["ratio_median"] == pytest.approx(100 / 90)
    assert sbs.summarise([100.0] * 5, [110.0] * 5, True, True)["verdict"] == "not slower"
    noisy = sbs.summarise(ones, [0.9, 0.95, 1.0, 1.05, 1.1], False, True)
    assert noisy["verdict"] == "inconclusive" and "straddles" in noisy["why"]
    few = sbs.summarise([1.0] * 3, [2.0] * 3, False, True)
    assert few["verdict"] == "inconclusive" and "too few" in few["why"]
    assert sbs.summarise(ones, [2.0] * 5, False, False)["verdict"] == "not gated"


def test_worker_env(sbs: Any, tmp_path: Path) -> None:
    inherited = {"NUMBA_CPU_NAME": "haswell", "ATEN_CPU_CAPABILITY": "avx2", "HOME": "/h"}
    e512 = sbs.worker_env(tmp_path, "avx512", 1, "sweep", base=inherited)
    assert e512["ATEN_CPU_CAPABILITY"] == "avx512" and "NUMBA_CPU_NAME" not in e512 and e512["HOME"] == "/h"
    assert e512["PYTHONPATH"] == str(tmp_path) and e512["OMP_NUM_THREADS"] == "1"
    assert e512["MALLOC_MMAP_THRESHOLD_"]  # the sweep's runs too (MALLOC_TUNED)
    assert "MALLOC_MMAP_THRESHOLD_" not in sbs.worker_env(tmp_path, "avx512", 1, "probe_overhead", base=inherited)
    e2 = sbs.worker_env(tmp_path, "avx2", 2, "activations", base={})
    assert e2["NUMBA_CPU_NAME"] == "haswell" and e2["NUMBA_CPU_FEATURES"] == "" and e2["NUMBA_NUM_THREADS"] == "2"
    assert e2["MALLOC_MMAP_THRESHOLD_"]  # as benchmarks/activations.py times


def test_export_reuses_the_tree(sbs: Any, tmp_path: Path) -> None:
    sha, src = sbs.export("HEAD", tmp_path)
    assert (src / "actlab" / "__init__.py").is_file() and (src.parent / "COMMIT").read_text().strip() == sha
    (src / "marker").write_text("kept")
    assert sbs.export("HEAD", tmp_path) == (sha, src) and (src / "marker").is_file()
    with pytest.raises(sbs.SideBySideError, match="unknown revision 'no-such-rev'"):
        sbs.export("no-such-rev", tmp_path)


class Scripted:
    """Stands in for the worker process: each benchmark's figures from ``values(side, call)``."""

    def __init__(self, old_src: Path, values: Any, numba: dict | None = None) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.old_src, self.values, self.numba = old_src, values, numba or {"cpu_name": "haswell", "avx512_features": [],
                                                                             "zmm_in_code": False}

    def __call__(self, src: Path, bench: str, isa: str, params: dict, timeout: float) -> dict:
        side = "old" if src == self.old_src else "new"
        env = {"actlab": str(src / "actlab"), "torch_capability": isa.upper(), "threads": params["threads"]}
        if bench == "isa":
            return {"env": env, "numba": self.numba}
        self.calls.append((side, bench, isa))
        n = sum(1 for c in self.calls if c[:2] == (side, bench))
        figs = {"step, ms": {"value": self.values(side, n), "unit": "ms", "gated": True, "higher_is_better": False},
                "torch alone, ms (control)": {"value": 1.0, "unit": "ms", "gated": False, "higher_is_better": False}}
        if side == "new":
            figs["new quantity, ms"] = {"value": 1.0, "unit": "ms", "gated": True, "higher_is_better": False}
        return {"env": env, "figures": figs, "seconds": 0.1}


def _main(sbs: Any, tmp_path: Path, values: Any, reps: int = 5, numba: dict | None = None) -> tuple[int, dict, Scripted]:
    old_sha, old_src = sbs.export("HEAD", tmp_path / "cache")
    fake = Scripted(old_src, values, numba)
    out = tmp_path / "sbs.json"
    rc = sbs.main(["--base", "HEAD", "--isa", "avx2", "--benchmarks", "sweep", "--reps", str(reps), "--separate",
                   "--cache-dir", str(tmp_path / "cache"), "--json-out", str(out)], run=fake)
    return rc, (json.loads(out.read_text()) if out.is_file() else {}), fake


def test_pairs_alternate_and_a_slower_figure_fails(sbs: Any, tmp_path: Path) -> None:
    rc, res, fake = _main(sbs, tmp_path, lambda side, n: 1.2 if side == "new" else 1.0)
    assert [c[0] for c in fake.calls] == ["old", "new", "new", "old", "old", "new", "new", "old", "old", "new"]
    assert rc == 1 and res["verdict"] == "slower"
    figs = res["isas"]["avx2"]["benchmarks"]["sweep"]
    assert figs["figures"]["step, ms"]["ratio_median"] == pytest.approx(1.2)
    assert figs["figures"]["torch alone, ms (control)"]["verdict"] == "not gated"
    assert figs["only_new"] == ["new quantity, ms"]  # not compared, and said so
    assert res["machine"]["cpu"] and isinstance(res["machine"]["avx512"], bool)
    assert res["isas"]["avx2"]["check"]["env"]["ATEN_CPU_CAPABILITY"] == "avx2"


def test_equal_code_passes_and_noise_is_inconclusive(sbs: Any, tmp_path: Path) -> None:
    rc, res, _ = _main(sbs, tmp_path, lambda side, n: 1.0 + 0.001 * n)
    assert rc == 0 and res["verdict"] == "not slower"
    rc, res, _ = _main(sbs, tmp_path, lambda side, n: 1.0 if side == "old" else [0.8, 1.3, 0.9, 1.2, 1.0][n - 1])
    assert rc == 3 and res["verdict"] == "inconclusive" and res["slower"] == []
    rc, res, _ = _main(sbs, tmp_path, lambda side, n: 2.0 if side == "new" else 1.0, reps=2)
    assert rc == 3  # twice as slow, but 2 pairs cannot show it beyond the noise


def test_unforced_isa_stops_the_comparison(sbs: Any, tmp_path: Path, capsys: Any) -> None:
    leaky = {"cpu_name": "haswell", "avx512_features": ["avx512f"], "zmm_in_code": True}
    rc, res, fake = _main(sbs, tmp_path, lambda side, n: 1.0, numba=leaky)
    assert rc == 2 and res == {} and fake.calls == []
    assert "numba still targets AVX-512" in capsys.readouterr().err


def test_renamed_copy_imports_beside_the_new_tree(sbs: Any, tmp_path: Path) -> None:
    """The OLD tree as ``actlab_old``: one process imports both, each from its own files."""
    sha, src = sbs.export("HEAD", tmp_path)
    dest = sbs.renamed_copy(src)
    assert (dest / "actlab_old" / "__init__.py").is_file() and not (dest / "actlab").exists()
    assert sbs.renamed_copy(src) == dest  # reused
    code = ("import actlab.activations as a, actlab_old.activations as b, sys; "
            "assert a.__file__ != b.__file__ and 'actlab_old' in b.__file__; "
            "assert b.get('relu').name == 'relu'; print(sorted({m.split('.')[0] for m in sys.modules if 'actlab' in m}))")
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{dest}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "['actlab', 'actlab_old']"
    new_tree = re.compile(r"^\s*(import|from)\s+actlab(\.|\s|$)", re.M)
    bad = [f for f in (dest / "actlab_old").rglob("*.py") if new_tree.search(f.read_text())]
    assert bad == []  # no import of the NEW tree from the old one


def paired_fake(figures: Any) -> Any:
    """Stands in for a paired worker process: ``figures(bench, old)`` gives the run's figures."""

    def fake(src: Path, bench: str, isa: str, params: dict, timeout: float, old: Path | None = None) -> dict:
        env = {"actlab": str(src / "actlab"), "torch_capability": isa.upper(), "threads": 1}
        if bench == "isa":
            return {"env": env, "numba": {"cpu_name": "haswell", "avx512_features": [], "zmm_in_code": False}}
        return {"env": env, "seconds": 0.1, "figures": figures(bench, old)}

    return fake


def test_paired_runs_give_one_ratio_per_process(sbs: Any, tmp_path: Path) -> None:
    """Both trees in each process: the verdict is over the processes' own ratios."""
    calls = []

    def figures(bench: str, old: Path | None) -> dict:
        calls.append((bench, old))
        k = len(calls)
        figs: dict = {}
        # absolute times move a lot between processes; the in-process ratio barely
        sbs._paired_figures(figs, "relu fwd, ms", [1.0 + 0.001 * k], {"old": [1.0 * k], "new": [1.0 * k]}, "ms")
        sbs._paired_figures(figs, "mish fwd, ms", [1.3], {"old": [1.0], "new": [1.3]}, "ms")
        sbs._paired_figures(figs, "identity fwd, ms", [1.5], {"old": [1e-3], "new": [1.5e-3]}, "ms", gated=False)
        return figs

    res = sbs.compare(tmp_path, tmp_path / "new", ["activations"], ["avx2"], 5, dict(sbs.DEFAULTS),
                      run=paired_fake(figures), log=lambda s: None, paired=tmp_path / "renamed")
    assert calls == [("activations_paired", tmp_path / "renamed")] * 5  # one process per repetition, both trees
    figs = res["isas"]["avx2"]["benchmarks"]["activations"]["figures"]
    assert set(figs) == {"relu fwd, ms", "mish fwd, ms", "identity fwd, ms"}  # the same names as --separate gives
    assert figs["relu fwd, ms"]["verdict"] == "not slower" and figs["relu fwd, ms"]["old_median"] == pytest.approx(3.0)
    assert figs["relu fwd, ms"]["unit"] == "ms" and figs["identity fwd, ms"]["verdict"] == "not gated"
    assert figs["mish fwd, ms"]["verdict"] == "slower" and res["verdict"] == "slower"


def test_couples_put_each_side_first_and_second(sbs: Any) -> None:
    """A couple of turns is old-new then new-old; its ratio is the sum of new's costs over old's."""
    order: list[str] = []
    cost = {"old": iter([1.0, 3.0, 2.0, 2.0]), "new": iter([2.0, 2.0, 3.0, 3.0])}

    def run(side: str) -> float:
        order.append(side)
        return next(cost[side])

    times, ratios = sbs._couples(run, 3)  # 3 turns round up to 2 couples
    assert order == ["old", "new", "new", "old", "old", "new", "new", "old"]
    assert times == {"old": [1.0, 3.0, 2.0, 2.0], "new": [2.0, 2.0, 3.0, 3.0]}
    assert ratios == [pytest.approx(4.0 / 4.0), pytest.approx(6.0 / 4.0)]


def test_paired_is_the_default_for_every_benchmark(sbs: Any, tmp_path: Path) -> None:
    """Without --separate every benchmark runs its ``*_paired`` workload, with the renamed OLD tree."""
    seen = []

    def figures(bench: str, old: Path | None) -> dict:
        seen.append((bench, old is not None and (old / "actlab_old").is_dir()))
        figs: dict = {}
        sbs._paired_figures(figs, f"{bench} figure", [1.0], {"old": [1.0], "new": [1.0]}, "x")
        return figs

    out = tmp_path / "sbs.json"
    rc = sbs.main(["--base", "HEAD", "--isa", "avx2", "--reps", "5", "--cache-dir", str(tmp_path / "cache"),
                   "--json-out", str(out)], run=paired_fake(figures))
    assert rc == 0
    assert sorted(set(seen)) == [(f"{b}_paired", True) for b in sorted(sbs.BENCHMARKS)]
    assert all(f"{b}_paired" in sbs.WORKLOADS for b in sbs.BENCHMARKS)
    res = json.loads(out.read_text())
    assert res["settings"]["paired"] is True
    for b in sbs.BENCHMARKS:
        assert res["isas"]["avx2"]["benchmarks"][b]["figures"][f"{b}_paired figure"]["verdict"] == "not slower"


def test_a_bad_activation_name_is_one_line_naming_the_valid_ones(tmp_path: Path) -> None:
    """An error inside a worker (here an unknown --only name) comes back as one line, no traceback."""
    r = subprocess.run([sys.executable, str(SCRIPT), "--base", "HEAD", "--isa", "avx2", "--reps", "1", "--inner", "1",
                        "--benchmarks", "activations", "--size", "1024", "--only", "nosuch",
                        "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "unknown activation 'nosuch'" in r.stderr and "Valid names: identity" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the avx2 variant needs an x86-64 CPU")
@pytest.mark.parametrize("mode", ["paired", "separate"])
def test_real_run_against_the_old_code(tmp_path: Path, mode: str) -> None:
    """The three workloads run against the old tree's API and the new one, with AVX-512 turned off:
    both trees in each process (paired, the default), and one process per tree."""
    has_base = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "e53e0b0^{commit}"]).returncode == 0
    base = "e53e0b0" if has_base else "HEAD"
    r = subprocess.run([sys.executable, str(SCRIPT), "--base", base, "--isa", "avx2", "--reps", "1", "--inner", "1",
                        "--models", "mlp", "--probe-steps", "10", "--configs", "4", "--steps", "5",
                        "--size", "65536", "--only", "relu,gelu", "--cache-dir", str(tmp_path), "--json",
                        *(["--separate"] if mode == "separate" else [])],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, r.stderr[-3000:]  # one pair: every gated figure is inconclusive
    res = json.loads(r.stdout)
    assert res["new"]["src"] == str(ROOT / "src") and res["old"]["src"].startswith(str(tmp_path))
    assert res["settings"]["paired"] is (mode == "paired")
    check = res["isas"]["avx2"]["check"]
    assert check["torch_capability"] == "AVX2" and check["numba"]["avx512_features"] == []
    figs = res["isas"]["avx2"]["benchmarks"]
    assert {"mlp: probe every step / no probe", "mlp: probe every 10 / no probe"} <= set(figs["probe_overhead"]["figures"])
    assert "batched: model-steps per cpu-s" in figs["sweep"]["figures"]
    assert {"relu fwd, ms", "relu fwd+bwd, ms", "gelu fwd+bwd, ms"} <= set(figs["activations"]["figures"])
    for b in figs.values():
        for f in b["figures"].values():
            assert len(f["old"]) == len(f["new"]) == 1 and all(math.isfinite(v) and v > 0 for v in f["old"] + f["new"])
    assert "verdict: inconclusive" in r.stderr
