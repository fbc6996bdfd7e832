"""Time of one mean-field evaluation (q*, chi_1) per activation: the issue's goal is well under 10 ms.

    python benchmarks/theory.py [--repeats 50] [--target-ms 10] [--json] [--json-out PATH]

Each evaluation uses a new sigma_w^2, so no cache is hit. Prints the median and the fastest
time per activation, and the ratio of the median to the target.  Exits 1 when a median misses
the target.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _bench import add_output_options, finish, parse, progress, tables

from actlab.activations import specs
from actlab.theory import TheoryError, chi_1, q_star


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50, help="evaluations per activation (median reported)")
    ap.add_argument("--target-ms", type=float, default=10.0, help="milliseconds one evaluation may take")
    add_output_options(ap)
    args = parse(ap, argv)
    torch.set_num_threads(1)
    rows = []
    chosen = specs()
    for k, spec in enumerate(chosen):
        progress(f"[{k + 1}/{len(chosen)}] {spec.name}")
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
                     "fraction_of_target": med * 1e3 / args.target_ms, "pass": med * 1e3 < args.target_ms})
    with tables(args):
        print(f"{'activation':<14} {'median ms':>10} {'min ms':>8} {f'/ {args.target_ms:g} ms':>9}")
        for r in rows:
            if "skipped" in r:
                print(f"{r['activation']:<14} skipped: {r['skipped']}")
            else:
                print(f"{r['activation']:<14} {r['median_ms']:>10.3f} {r['min_ms']:>8.3f} "
                      f"{r['fraction_of_target']:>9.3f}  {'PASS' if r['pass'] else 'FAIL'}")
    return finish(args, {"target_ms": args.target_ms, "repeats": args.repeats, "rows": rows},
                  failed=[r["activation"] for r in rows if r.get("pass") is False])


if __name__ == "__main__":
    raise SystemExit(main())
