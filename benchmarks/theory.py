"""Time of one mean-field evaluation (q*, chi_1) per activation: the issue's goal is well under 10 ms.

    python benchmarks/theory.py [--repeats 50] [--json]

Each evaluation uses a new sigma_w^2, so no cache is hit. Prints the median and the fastest
time per activation, and the ratio of the median to the 10 ms goal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from actlab.activations import specs
from actlab.theory import TheoryError, chi_1, q_star


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for spec in specs():
        times = []
        try:
            for i in range(args.repeats):
                s = 1.1 + 0.013 * i
                t = time.perf_counter()
                q_star(spec.name, s, 0.05)
                chi_1(spec.name, s, 0.05)
                times.append(time.perf_counter() - t)
        except TheoryError as e:
            rows.append({"activation": spec.name, "skipped": str(e).split(";")[0]})
            continue
        med = statistics.median(times)
        rows.append({"activation": spec.name, "median_ms": med * 1e3, "min_ms": min(times) * 1e3,
                     "fraction_of_10ms": med / 0.010})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'activation':<14} {'median ms':>10} {'min ms':>8} {'/ 10 ms':>8}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['activation']:<14} skipped: {r['skipped']}")
        else:
            print(f"{r['activation']:<14} {r['median_ms']:>10.3f} {r['min_ms']:>8.3f} {r['fraction_of_10ms']:>8.3f}")


if __name__ == "__main__":
    main()
