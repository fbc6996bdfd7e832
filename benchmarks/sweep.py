"""Batched engine vs one-by-one training: configurations x steps per second, side by side.

The same configurations (MLP: input 64, 3 hidden layers of 64, 10 classes; ReLU; batch 128;
200 SGD steps; digits, standardised; learning rates 0.01-0.3; seed = index) are trained

- one by one, each as its own ``nn.Sequential`` of ``nn.Linear`` + ``nn.functional.relu``
  trained by the lab's trainer, ``torch.optim.SGD`` and autograd (:func:`actlab.sweep.engine.train_reference`
  with torch's built-in op: :func:`actlab.lab.train.train`, which also measures the whole
  training and test sets before and after), at 1 and at 2 intra-op threads; the faster is the baseline;
- by the batched engine (:func:`actlab.sweep.engine.train_group`), all configurations in one
  call (stacks of about 16 models, ``engine.STACK_ELEMENTS``, on one Python thread per core),
  recording its per-model statistics every ``--record-every`` steps.

Variants are interleaved within each repeat (the machine may be shared), and each figure is
the median over repeats; the ratio is the median of the per-repeat ratios.  For sizes above
``--oneby-max`` the one-by-one figure is measured on the first ``--oneby-max``
configurations, and at 2 threads on the first ``--oneby-2t-max`` (its throughput does not
depend on how many there are).

Run::

    python benchmarks/sweep.py                 # sizes 8, 64, 256
    python benchmarks/sweep.py --json --repeats 5     # JSON on stdout; --json-out PATH writes it

Exits 1 when the batched engine misses issue 6's target at 64 configurations (>= 6x the faster
one-by-one loop, wall time; `--target` changes it).  Progress goes to stderr after each size.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from _bench import add_output_options, finish, parse, progress, tables

from actlab.sweep.engine import default_threads, load_data, train_group, train_reference
from actlab.sweep.spec import Config, Record

LRS = (0.01, 0.03, 0.1, 0.3)
TARGET = 6.0          # batched / one-by-one model-steps per second (issue 6's acceptance, 2 CPU cores)
TARGET_CONFIGS = 64   # ... for this many configurations


def configs(n: int, steps: int, config: type = Config) -> list[Config]:
    """``n`` ReLU MLPs on digits; ``config``: the ``Config`` class (another tree's, side by side)."""
    return [config(activation="relu", depth=3, width=64, batch_size=128, steps=steps, lr=LRS[i % len(LRS)],
                   optimiser="sgd", data="digits", seed=i) for i in range(n)]


def time_oneby(cs: list[Config], threads: int) -> tuple[float, float]:
    """(model-steps per wall second, per CPU second of this process)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    data = load_data("digits", "standardise", None)
    try:
        t, cpu = time.perf_counter(), time.process_time()
        for c in cs:
            train_reference(c, builtin=True, data=data)
        work = len(cs) * cs[0].steps
        return work / (time.perf_counter() - t), work / (time.process_time() - cpu)
    finally:
        torch.set_num_threads(prev)


def time_batched(cs: list[Config], record: Record, threads: int,
                 train: Callable[..., list] = train_group) -> tuple[float, float]:
    """(model-steps per wall second, per CPU second) of one ``train(cs, record)`` call
    (default the engine's ``train_group``; another tree's, side by side)."""
    t, cpu = time.perf_counter(), time.process_time()
    res = train(cs, record, threads=threads)
    work = len(cs) * cs[0].steps
    rates = work / (time.perf_counter() - t), work / (time.process_time() - cpu)
    assert all(r.status in ("done", "diverged") for r in res)
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 256])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--oneby-max", type=int, default=64)
    ap.add_argument("--oneby-2t-max", type=int, default=2,
                    help="configurations timed one by one at 2 threads (a throughput; size-independent; 0 skips)")
    ap.add_argument("--record-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="batched engine shards (default: usable cores)")
    ap.add_argument("--target", type=float, default=TARGET,
                    help=f"batched / one-by-one throughput the {TARGET_CONFIGS}-configuration row must reach "
                         f"(default {TARGET:g}, issue 6)")
    add_output_options(ap)
    a = parse(ap, argv)
    threads = a.threads or default_threads()
    record = Record(every=a.record_every)
    load_data("digits", "standardise", None)
    # warm-up: first-call costs (allocator, catalog caches) are not part of either figure
    time_oneby(configs(2, 5), 1)
    time_batched(configs(4, 5), record, threads)

    rows = {n: {"oneby_1t": [], "oneby_2t": [], "batched": [], "ratio": [], "cpu_oneby": [], "cpu_batched": [],
                "cpu_ratio": []} for n in a.sizes}
    for rep in range(a.repeats):
        for n in a.sizes:
            cs = configs(n, a.steps)
            sub = cs[: a.oneby_max]
            r = rows[n]
            order = ["batched", "oneby_1t", "oneby_2t"] if rep % 2 else ["oneby_1t", "oneby_2t", "batched"]
            for v in order:
                if v == "batched":
                    wall, cpu = time_batched(cs, record, threads)
                    r["cpu_batched"].append(cpu)
                elif v == "oneby_1t":
                    wall, cpu = time_oneby(sub, 1)
                    r["cpu_oneby"].append(cpu)
                elif a.oneby_2t_max > 0:  # 2 threads: on a shared machine OpenMP barriers can make it very slow
                    wall, _ = time_oneby(cs[: a.oneby_2t_max], 2)
                else:
                    wall = math.nan
                r[v].append(wall)
            r["ratio"].append(r["batched"][-1] / max(r["oneby_1t"][-1], r["oneby_2t"][-1] if a.oneby_2t_max else 0))
            r["cpu_ratio"].append(r["cpu_batched"][-1] / r["cpu_oneby"][-1])
            progress(f"repeat {rep + 1}/{a.repeats} n={n}: one-by-one {r['oneby_1t'][-1]:.0f} (1 thread) / "
                     f"{r['oneby_2t'][-1]:.0f} (2 threads), batched {r['batched'][-1]:.0f} model-steps/s, "
                     f"ratio {r['ratio'][-1]:.2f}x (per CPU-second: {r['cpu_ratio'][-1]:.2f}x)")

    med = statistics.median
    out = {
        "machine": {"cpus": os.cpu_count(), "usable_cpus": default_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "load_avg": os.getloadavg()},
        "setup": {"model": "MLP 64-64-64-64-10 relu", "batch": 128, "steps": a.steps, "optimiser": "sgd",
                  "data": "digits", "record_every": a.record_every, "batched_threads": threads,
                  "repeats": a.repeats, "oneby_max": a.oneby_max, "oneby_2t_max": a.oneby_2t_max},
        "results": [
            {"configs": n, "oneby_measured_on": min(n, a.oneby_max),
             "oneby_1thread_model_steps_per_s": med(r["oneby_1t"]),
             "oneby_2threads_model_steps_per_s": med(r["oneby_2t"]),
             "batched_model_steps_per_s": med(r["batched"]),
             "ratio_median": med(r["ratio"]), "ratio_per_repeat": r["ratio"],
             "oneby_1thread_model_steps_per_cpu_s": med(r["cpu_oneby"]),
             "batched_model_steps_per_cpu_s": med(r["cpu_batched"]),
             "cpu_efficiency_ratio_median": med(r["cpu_ratio"])}
            for n, r in rows.items()
        ],
    }
    row = next((res for res in out["results"] if res["configs"] == TARGET_CONFIGS), None)
    out["target"] = {"configs": TARGET_CONFIGS, "ratio": a.target,
                     "met": None if row is None else row["ratio_median"] >= a.target}
    with tables(a):
        print(f"\nmedians over {a.repeats} interleaved repeats (load average at end: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; batched on {threads} thread(s))")
        print(f"{'configs':>8} {'one-by-one 1t':>14} {'one-by-one 2t':>14} {'batched':>10} {'ratio':>7} "
              f"{'per-CPU-s ratio':>16}")
        for res in out["results"]:
            print(f"{res['configs']:>8} {res['oneby_1thread_model_steps_per_s']:>14.0f} "
                  f"{res['oneby_2threads_model_steps_per_s']:>14.0f} {res['batched_model_steps_per_s']:>10.0f} "
                  f"{res['ratio_median']:>6.2f}x {res['cpu_efficiency_ratio_median']:>15.2f}x")
        print("(model-steps/s = configurations x steps per wall second; ratio = batched / the faster one-by-one;\n"
              " per-CPU-s ratio = the same work per CPU-second of each process: insensitive to other load)")
        if row is None:
            print(f"target: not checked (no {TARGET_CONFIGS}-configuration row; add it to --sizes)")
        else:
            print(f"target: ratio >= {a.target:g}x at {TARGET_CONFIGS} configurations: "
                  f"{'met' if out['target']['met'] else 'NOT met'} ({row['ratio_median']:.2f}x)")
    return finish(a, out, failed=[] if out["target"]["met"] is not False
                  else [f"batched/one-by-one {row['ratio_median']:.2f}x < {a.target:g}x at {TARGET_CONFIGS} configs"])


if __name__ == "__main__":
    raise SystemExit(main())
