"""The diagnosis zoo as a table: each broken case x (detected, right cause, false alarms), then the
healthy models over several seeds (any warning or error is a false alarm).

Run:  python benchmarks/diagnosis.py [--seeds 3] [--only NAME] [--json] [--json-out PATH]
Exits 1 if a broken case is missed or mis-caused, or a healthy model gets a warning or error.
Each row is printed as its case finishes (with --json, on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "probe"))

import torch  # noqa: E402
from _bench import add_output_options, finish, parse, tables  # noqa: E402
from zoo import BROKEN, HEALTHY, judge, run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per healthy model (default 3)")
    ap.add_argument("--only", default=None, help="run only cases whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every finding")
    add_output_options(ap)
    a = parse(ap, argv)
    torch.set_num_threads(1)
    broken, healthy, failed = [], [], []
    with tables(a):  # the rows are the progress: one per case, as it finishes
        print(f"{'case':34} {'detected':>8} {'cause':>6} {'false alarms':<30} {'s':>5}", flush=True)
        for case in BROKEN:
            if a.only and a.only not in case.name:
                continue
            t = time.perf_counter()
            findings, _, _ = run(case, seed=0)
            v = judge(case, findings)
            broken.append({"case": case.name, "detected": v.detected, "right_cause": v.right_cause,
                           "false_alarms": list(v.false_alarms), "seconds": time.perf_counter() - t})
            if not v.ok:
                failed.append(case.name)
            print(f"{case.name:34} {'yes' if v.detected else 'NO':>8} {'yes' if v.right_cause else 'NO':>6} "
                  f"{','.join(v.false_alarms) or '-':<30} {time.perf_counter() - t:5.1f}", flush=True)
            if a.verbose or not v.ok:
                for f in findings:
                    print(f"    {f}\n      cause: {f.cause}")
        print()
        print(f"{'healthy model':34} {'seeds':>8} {'warnings/errors':<38} {'s':>5}", flush=True)
        for case in HEALTHY:
            if a.only and a.only not in case.name:
                continue
            t = time.perf_counter()
            alarms = []
            for seed in range(a.seeds):
                findings, _, _ = run(case, seed=seed)
                v = judge(case, findings)
                alarms += [f"{k}@{seed}" for k in v.false_alarms]
                if a.verbose or v.false_alarms:
                    for f in findings:
                        print(f"    seed {seed}: {f}\n      cause: {f.cause}")
            healthy.append({"case": case.name, "seeds": a.seeds, "false_alarms": alarms,
                            "seconds": time.perf_counter() - t})
            if alarms:
                failed.append(case.name)
            print(f"{case.name:34} {a.seeds:>8} {','.join(alarms) or '0':<38} {time.perf_counter() - t:5.1f}",
                  flush=True)
        n_ok = sum(1 for r in broken if r["case"] not in failed)
        n_alarms, n_runs = sum(len(r["false_alarms"]) for r in healthy), sum(r["seeds"] for r in healthy)
        print(f"\ntotals: {n_ok}/{len(broken)} broken cases detected with the right cause and no other alarm; "
              f"{n_alarms} warning(s)/error(s) over {n_runs} healthy runs ({len(healthy)} models x {a.seeds} seeds)")
        print(f"{'all right' if not failed else f'{len(failed)} case(s) wrong'}")
    return finish(a, {"broken": broken, "healthy": healthy, "wrong": failed}, failed=failed)


if __name__ == "__main__":
    raise SystemExit(main())
