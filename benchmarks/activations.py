"""Throughput of every catalog activation: actlab's analytic path vs torch's built-in vs a naive
composition of torch ops, next to the machine's memory-copy ceiling.

Run::

    python benchmarks/activations.py                 # every activation, 16M float32 elements
    python benchmarks/activations.py --only gelu,maxout --repeats 15
    python benchmarks/activations.py --json > bench.json     # or --json-out bench.json
    python benchmarks/activations.py --only mish --unfused   # fused kernel vs torch's, one run

What is timed, for each activation (``actlab.activations.specs()``, nothing skipped silently):

- ``analytic``: ``apply(spec, x)``, actlab's generic ``autograd.Function`` whose backward is the
  catalog's analytic derivative (or its fused ``vjp``);
- ``builtin``: ``spec.builtin``, torch's own op under torch's autograd (where torch has one);
- ``naive``: the textbook formula written with torch ops under autograd (``NAIVE`` below);
- ``copy``: ``dst.copy_(src)`` of the same size, the memory ceiling of the machine;
- ``unfused`` (with ``--unfused``, for activations with a fused kernel in
  ``actlab.activations.kernels``): the analytic path on torch's kernels made exact by an input
  check (``kernels.disabled()``, what ``ACTLAB_FUSED=0`` gives): the form the fused kernel replaced.

Each for ``fwd`` (forward under ``torch.no_grad()``) and ``fwd+bwd`` (forward, then
``torch.autograd.grad`` with a random upstream gradient; no ``.grad`` accumulation). Step and
sign have a derivative that is zero almost everywhere (``spec.backprop`` is False): only their
forward is timed, and the table says so.

Byte model (what an ideal, fused kernel moves; GB/s = bytes / median time):

- ``fwd``: read the input, write the output: ``4 * (n_in + n_out)`` bytes for float32;
- ``fwd+bwd``: the forward, plus a backward that reads the upstream gradient (``n_out``) and one
  saved tensor the size of the input (``n_in``), and writes the input gradient (``n_in``):
  ``4 * (2 n_in + 2 n_out + n_in)``, i.e. 5 x 4 bytes per element for elementwise activations.
  (PReLU's slope gradient is a reduction over a tensor the backward already holds; it is not
  counted. Maxout with k pieces has ``n_out = n_in / k``.)
- ``copy``: ``4 * 2 n``, the same as an elementwise forward: a forward at the copy ceiling is as fast
  as memory allows.

The same byte model is used for all variants of a row, so the GB/s ratios are time ratios.

Variants are interleaved (every repetition runs every variant of a row, in a rotating order),
because the machine may be shared: GB/s come from median times, and each ratio
(analytic/builtin, analytic/naive; > 1 means the analytic path is faster) is the median over
repetitions of the paired time ratio of that repetition. ``--threads N`` sets torch's intra-op
threads (on a loaded machine one thread gives steadier figures).

Targets (issue 2): fwd+bwd of the analytic path >= 0.9x torch's built-in where torch has one,
>= 1.5x the naive composition where it has none (and for erf, whose built-in backward is itself a
composite). The table marks each PASS/FAIL. Identity moves no bytes on either path (both return
the input: ``spec.passthrough``), so its row times Python call overhead only and has no target.

torch's fused SiLU and GELU kernels give NaN at +-inf, where the catalog promises the limits.
Made exact around torch's kernels, each call would read its input once more (a norm check), which
on a memory-bound op caps the ratio at 5/6; so for float32 CPU tensors of at least 256K elements
SiLU (and Swish at beta = 1), GELU and GELU-tanh run actlab's own fused numba kernels
(``actlab.activations.kernels``), exact for every input in the one pass. ``ACTLAB_FUSED=0``
measures the torch-kernel form instead.

Measurements behind choices in ``actlab.activations`` (the code comments there give the why, the
figures live here because they go stale; 2-core AVX-512 x86-64 CPU, torch 2.x, a shared machine):

- the input check of the exact forwards (``catalog._norm``): BLAS ``dot(x, x)`` read a 64 MiB
  float32 tensor in 1.8 ms against ``torch.linalg.vector_norm``'s 2.4 ms;
- ``catalog._mask``: ``bool.to(float32)`` ran 7x slower than the same cast from ``uint8``;
- ``catalog._erf_vjp``: torch's ``exp2`` ran ~3x faster than its ``exp``;
- ``catalog._maxout_vjp``: elementwise ops writing every other element ran ~5x slower than
  contiguous ones, hence ``torch.complex`` to interleave two contiguous halves;
- ``kernels.MIN_NUMEL`` (256K elements): SiLU forward+backward through ``apply``, fused against
  torch's kernels, medians: 64K elements 144 us (one thread) against 111 us; 256K 235 against
  225 (2 threads, from here on); 1M 684 against 705; 4M 2551 against 2756;
- ``kernels.usable``: with numba's ``workqueue`` threading layer beside torch's multithreaded
  OpenMP, SiLU forward+backward ran at 0.62x torch's (16M float32), hence torch's kernel there.

Two traps on CPU machines with glibc:

1. glibc serves every allocation of >= 32 MiB (after its dynamic threshold) with fresh ``mmap``
   pages, and returns them on free, so every new 64 MiB tensor pays ~16k page faults (~25 ms here),
   more than the kernel itself. Unless ``--no-malloc-tuning`` is given, the script re-executes
   itself with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set high (they must be set
   before the process starts), and prints which setting it used and the page faults it measured per
   fresh tensor. Even so the heap grows over the first calls of a row, which then fault on fresh
   pages and run 2-3x slower: each row warms up until a round of all its calls runs without a
   page fault (at most ``WARM_ROUNDS``; the rounds taken are in the JSON as ``warm_rounds``).
2. ``torch.compile`` is not used: on these machines a compiled forward+backward that saves a boolean
   mask (relu, hardtanh, ``where``) ran ~10x slower than eager.
"""

from __future__ import annotations

import os
import sys

# glibc reads these only at process start, so set them and re-exec before anything allocates.
from _malloc import MALLOC_ENV as _MALLOC_ENV  # noqa: E402 (benchmarks/_malloc.py: no torch import)

_REEXEC_FLAG = "_ACTLAB_BENCH_REEXEC"


def _malloc_setting(argv: list[str]) -> str:
    """Re-exec with (or without) the malloc tuning if needed; return a description of what is in effect."""
    want = "--no-malloc-tuning" not in argv
    have = {k: os.environ.get(k) for k in _MALLOC_ENV}
    tuned = all(have.values())
    if want and not tuned and not os.environ.get(_REEXEC_FLAG):
        env = dict(os.environ, **_MALLOC_ENV, **{_REEXEC_FLAG: "1"})
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)
    if not want and any(have.values()) and not os.environ.get(_REEXEC_FLAG):
        env = {k: v for k, v in os.environ.items() if k not in _MALLOC_ENV}
        env[_REEXEC_FLAG] = "1"
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)
    shown = " ".join(f"{k}={v}" for k, v in have.items() if v)
    if tuned:
        return f"tuned ({shown})"
    if want:
        return "NOT tuned: re-exec did not take effect" + (f" ({shown})" if shown else "")
    return "not tuned (--no-malloc-tuning)" + (f"; partial: {shown}" if shown else "")


if __name__ == "__main__":
    _MALLOC = _malloc_setting(sys.argv[1:])

import argparse
import math
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _bench import add_output_options, describe_machine, finish, machine, parse, progress, tables
from torch import Tensor

from actlab.activations import ActivationError, ActivationSpec, apply, get, kernels, specs

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _maxout_naive(x: Tensor, p: dict) -> Tensor:
    return x.unflatten(-1, (-1, int(p["pieces"]))).max(-1).values


def _selu_naive(x: Tensor, p: dict) -> Tensor:
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    return lam * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


# The textbook formula of each activation, written with torch ops and differentiated by autograd:
# what a user would write without actlab or a built-in. Keyed by canonical name; an activation
# without an entry is reported as "no naive formula", never dropped.
NAIVE: dict[str, Callable[[Tensor, dict], Tensor]] = {
    "identity": lambda x, p: x * 1.0,
    "step": lambda x, p: (x >= 0).to(x.dtype),
    "sign": lambda x, p: (x > 0).to(x.dtype) - (x < 0).to(x.dtype),
    "sigmoid": lambda x, p: 1 / (1 + torch.exp(-x)),
    "hard_sigmoid": lambda x, p: torch.clamp((x + 3) / 6, 0.0, 1.0),
    "tanh": lambda x, p: (torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1),
    "hardtanh": lambda x, p: torch.minimum(torch.maximum(x, torch.tensor(p["min_val"])), torch.tensor(p["max_val"])),
    "softsign": lambda x, p: x / (1 + x.abs()),
    "relu": lambda x, p: torch.maximum(x, torch.zeros((), dtype=x.dtype)),
    "relu6": lambda x, p: torch.minimum(torch.maximum(x, torch.zeros((), dtype=x.dtype)), torch.tensor(6.0)),
    "leaky_relu": lambda x, p: torch.where(x > 0, x, p["negative_slope"] * x),
    "prelu": lambda x, p: torch.where(x > 0, x, p["negative_slope"] * x),
    "rrelu": lambda x, p: torch.where(x >= 0, x, (p["lower"] + p["upper"]) / 2 * x),
    "elu": lambda x, p: torch.where(x > 0, x, p["alpha"] * (torch.exp(x) - 1)),
    "celu": lambda x, p: torch.clamp(x, min=0) + torch.clamp(p["alpha"] * (torch.exp(x / p["alpha"]) - 1), max=0),
    "selu": _selu_naive,
    "softplus": lambda x, p: torch.log(1 + torch.exp(p["beta"] * x)) / p["beta"],
    "gelu": lambda x, p: 0.5 * x * (1 + torch.erf(x / _SQRT2)),
    "gelu_tanh": lambda x, p: 0.5 * x * (1 + torch.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3))),
    "silu": lambda x, p: x * torch.sigmoid(x),
    "swish": lambda x, p: x * torch.sigmoid(p["beta"] * x),
    "mish": lambda x, p: x * torch.tanh(F.softplus(x)),
    "erf": lambda x, p: torch.erf(x),
    "maxout": _maxout_naive,
}

# Acceptance targets (issue 2): fwd+bwd of the analytic path >= 0.9x torch's built-in where torch has
# one, >= 1.5x the naive composition where it has none. Erf's built-in backward is itself a composite
# of torch ops (exp(-x^2) * 2/sqrt(pi) * grad), so erf must also beat its naive form by 1.5x.
BUILTIN_TARGET = 0.9
NAIVE_TARGET = 1.5
# Mish too (issue 12): its analytic path must beat the naive x * tanh(softplus(x)) by 1.5x.
ALSO_NAIVE_TARGET = frozenset({"erf", "mish"})

VARIANTS = ("copy", "analytic", "unfused", "builtin", "naive")


def _shape(size: int, width: int = 1024) -> tuple[int, ...]:
    return (size // width, width) if size % width == 0 and size >= width else (size,)


def _params(spec: ActivationSpec, x: Tensor) -> dict[str, Any]:
    """Default hyperparameters; learnable ones become tensors that require grad (as in nn.PReLU)."""
    p: dict[str, Any] = dict(spec.defaults())
    for hp in spec.params:
        if hp.learnable:
            p[hp.name] = torch.full((1,), float(hp.default), dtype=x.dtype, requires_grad=True)
    return p


def _unfused(spec: ActivationSpec, p: dict[str, Any]) -> Callable[[Tensor], Tensor]:
    def run(t: Tensor) -> Tensor:
        with kernels.disabled():
            return apply(spec, t, **p)
    return run


def _has_kernel(spec: ActivationSpec) -> bool:
    return kernels.available() and (spec.name in kernels.KINDS or spec.name == "swish")


def _callables(spec: ActivationSpec, x: Tensor, g: Tensor, src: Tensor, dst: Tensor,
               unfused: bool = False) -> dict[str, dict[str, Callable[[], Any]]]:
    """For each variant, a fwd and (where the spec backprops) a fwd+bwd closure."""
    p = _params(spec, x)
    pt = {**p, "training": False}
    learn = [p[n] for n in spec.learnable]
    fns: dict[str, Callable[[Tensor], Tensor]] = {"analytic": lambda t: apply(spec, t, **p)}
    if unfused and _has_kernel(spec):
        fns["unfused"] = _unfused(spec, p)
    if spec.builtin is not None:
        fns["builtin"] = lambda t: spec.builtin(t, pt)  # type: ignore[misc]
    if spec.name in NAIVE:
        fns["naive"] = lambda t: NAIVE[spec.name](t, pt)
    xg = x.detach().requires_grad_(True)

    def fwd(f: Callable[[Tensor], Tensor]) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return f(x)
        return run

    def fwdbwd(f: Callable[[Tensor], Tensor]) -> Callable[[], Any]:
        def run() -> Any:
            y = f(xg)
            return torch.autograd.grad(y, [xg, *learn], g)
        return run

    out: dict[str, dict[str, Callable[[], Any]]] = {"copy": {"fwd": lambda: dst.copy_(src)}}
    out["copy"]["fwd+bwd"] = out["copy"]["fwd"]
    for v, f in fns.items():
        out[v] = {"fwd": fwd(f)}
        if spec.backprop:
            out[v]["fwd+bwd"] = fwdbwd(f)
    return out


def _bytes(mode: str, n_in: int, n_out: int, itemsize: int) -> int:
    if mode == "fwd":
        return itemsize * (n_in + n_out)
    return itemsize * (2 * n_in + 2 * n_out + n_in)


#: Most extra warm-up rounds (every variant once) waiting for one without page faults.
WARM_ROUNDS = 20


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bench_spec(spec: ActivationSpec, size: int, repeats: int, warmup: int, dtype: torch.dtype,
               unfused: bool = False, variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """Time the ``variants`` of ``spec`` (default all) in both modes, interleaved; return medians and GB/s."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(_shape(size), generator=gen, dtype=dtype)
    with torch.no_grad():
        y = apply(spec, x)
    g = torch.randn(y.shape, generator=gen, dtype=dtype)
    src, dst = torch.randn(x.shape, generator=gen, dtype=dtype), torch.empty_like(x)
    calls = _callables(spec, x, g, src, dst, unfused)
    n_in, n_out = x.numel(), y.numel()
    del y
    modes = ("fwd", "fwd+bwd") if spec.backprop else ("fwd",)
    cells = [(v, m) for m in modes for v in VARIANTS if v in variants and v in calls and m in calls[v]]
    times: dict[tuple[str, str], list[float]] = {c: [] for c in cells}
    faults: dict[tuple[str, str], int] = {c: 0 for c in cells}
    for _ in range(warmup):
        for v, m in cells:
            calls[v][m]()
    # Then until a whole round runs without a page fault (at most WARM_ROUNDS): glibc's heap grows
    # over the first calls (a 16 MiB output on fresh pages ran 3x slower than on reused ones), and
    # timing those calls made a figure's median depend on how many of its calls came early.
    rounds = 0
    while rounds < WARM_ROUNDS:
        f0 = _faults()
        for v, m in cells:
            calls[v][m]()
        rounds += 1
        if _faults() == f0:
            break
    for r in range(repeats):
        k = r % len(cells)
        for v, m in cells[k:] + cells[:k]:  # rotate the order so no variant always runs first
            f0 = _faults()
            t0 = time.perf_counter()
            res = calls[v][m]()
            t1 = time.perf_counter()
            del res
            faults[(v, m)] += _faults() - f0
            times[(v, m)].append(t1 - t0)
    rows: dict[str, Any] = {
        "name": spec.name, "backprop": spec.backprop, "elementwise": spec.elementwise,
        "n_in": n_in, "n_out": n_out, "builtin": spec.builtin is not None, "naive": spec.name in NAIVE,
        "modes": {}, "warm_rounds": rounds,
    }
    item = torch.empty((), dtype=dtype).element_size()
    for m in modes:
        nbytes = _bytes(m, n_in, n_out, item)
        copy_bytes = _bytes("fwd", n_in, n_in, item)
        md: dict[str, Any] = {"bytes": nbytes}
        for v in VARIANTS:
            if (v, m) not in times:
                md[v] = None
                continue
            med = statistics.median(times[(v, m)])
            b = copy_bytes if v == "copy" else nbytes
            md[v] = {
                "median_ms": med * 1e3,
                "min_ms": min(times[(v, m)]) * 1e3,
                "gbps": b / med / 1e9,
                "faults_per_call": faults[(v, m)] / repeats,
            }
        # Ratios are paired: each repetition's t_other / t_analytic (the two ran moments apart), then
        # the median over repetitions, which cancels slow drifts in the load of a shared machine.
        for other in ("builtin", "naive", "unfused"):
            if md.get(other):
                pairs = [to / ta for to, ta in zip(times[(other, m)], times[("analytic", m)])]
                md[f"analytic/{other}"] = statistics.median(pairs)
            else:
                md[f"analytic/{other}"] = None
        if md.get("unfused") and md.get("naive"):
            pairs = [tn / tu for tn, tu in zip(times[("naive", m)], times[("unfused", m)])]
            md["unfused/naive"] = statistics.median(pairs)
        md["analytic/copy"] = (md["analytic"]["gbps"] / md["copy"]["gbps"]) if md.get("copy") else None
        rows["modes"][m] = md
    rows["targets"] = _targets(spec, rows)
    return rows


def _targets(spec: ActivationSpec, row: dict[str, Any]) -> list[dict[str, Any]]:
    if not spec.backprop:
        return [{"target": "none (no backprop: f' = 0 almost everywhere; forward only)", "pass": None}]
    if spec.passthrough:
        # No kernel and no bytes on either path: the row times a Python call, not throughput.
        return [{"target": "none (no kernel: both paths return the input)", "pass": None}]
    fb = row["modes"]["fwd+bwd"]
    out = []
    if spec.builtin is not None:
        r = fb["analytic/builtin"]
        out.append({"target": f"fwd+bwd analytic/builtin >= {BUILTIN_TARGET}", "value": r,
                    "pass": None if r is None else r >= BUILTIN_TARGET, **({"why": "not timed"} if r is None else {})})
    if spec.builtin is None or spec.name in ALSO_NAIVE_TARGET:
        r = fb["analytic/naive"]
        if r is None and spec.name in NAIVE:  # bench_spec was asked for other variants only
            out.append({"target": f"fwd+bwd analytic/naive >= {NAIVE_TARGET}", "value": None, "pass": None,
                        "why": "not timed"})
        elif r is None:
            out.append({"target": f"fwd+bwd analytic/naive >= {NAIVE_TARGET}", "value": None, "pass": False,
                        "why": "no naive formula in NAIVE"})
        else:
            out.append({"target": f"fwd+bwd analytic/naive >= {NAIVE_TARGET}", "value": r, "pass": r >= NAIVE_TARGET})
    return out


def _fresh_tensor_faults(size: int, dtype: torch.dtype, n: int = 8) -> float:
    """Minor page faults per fresh ``size``-element tensor in steady state (~0 with the malloc tuning)."""
    x = torch.randn(_shape(size), dtype=dtype)
    for _ in range(4):
        (x + 1).sum()
    f0 = _faults()
    for _ in range(n):
        del_me = x + 1
        del del_me
    return (_faults() - f0) / n


def _fmt(v: float | None, spec: str = "6.1f") -> str:
    width = int(spec.split(".")[0] or 0)
    return "-".rjust(width) if v is None else format(v, spec)


def _print_table(res: dict[str, Any]) -> None:
    print(f"actlab activation throughput  (torch {res['torch']}, {res['threads']} threads)")
    print(f"size {res['size']} x {res['dtype']}, shape {res['shape']}, {res['repeats']} interleaved repeats, medians")
    print(describe_machine(res["machine"]) if isinstance(res.get("machine"), dict) else f"machine: {res.get('machine')}")
    print(f"malloc: {res['malloc']}; page faults per fresh tensor: {res['fresh_tensor_faults']:.0f}")
    print("bytes: fwd = read in + write out; fwd+bwd = fwd + read grad_out + read saved (input size) + write grad_in")
    print(f"copy ceiling (dst.copy_(src), 2 x 4 bytes/elem): median {res['copy_gbps']:.1f} GB/s")
    print("GB/s from median times; a/builtin, a/naive: median over repetitions of the paired time ratio "
          "(> 1: analytic faster); a/copy: analytic GB/s over the copy ceiling")
    print()
    hdr = (f"{'activation':<13}{'mode':<8}{'analytic':>9}{'builtin':>9}{'naive':>9}{'copy':>8}"
           f"{'a/builtin':>10}{'a/naive':>9}{'a/copy':>8}  target")
    print(hdr)
    print(f"{'':<21}{'GB/s':>9}{'GB/s':>9}{'GB/s':>9}{'GB/s':>8}")
    print("-" * len(hdr))
    for row in res["rows"]:
        for m, md in row["modes"].items():
            cells = [md[v]["gbps"] if md.get(v) else None for v in ("analytic", "builtin", "naive", "copy")]
            tgt = ""
            if m == "fwd+bwd" or not row["backprop"]:
                tgt = "; ".join(
                    t["target"].replace("fwd+bwd ", "") + (
                        "" if t["pass"] is None else f": {'PASS' if t['pass'] else 'FAIL'}")
                    for t in row["targets"])
            print(f"{row['name']:<13}{m:<8}{_fmt(cells[0], '9.1f')}{_fmt(cells[1], '9.1f')}{_fmt(cells[2], '9.1f')}"
                  f"{_fmt(cells[3], '8.1f')}{_fmt(md['analytic/builtin'], '10.2f')}{_fmt(md['analytic/naive'], '9.2f')}"
                  f"{_fmt(md['analytic/copy'], '8.2f')}  {tgt}")
    print()
    side = [(row, m, md) for row in res["rows"] for m, md in row["modes"].items() if md.get("unfused")]
    if side:
        print()
        print("fused kernel (analytic) against the torch-kernel form it replaced (unfused), same run:")
        print(f"{'activation':<13}{'mode':<8}{'analytic':>9}{'unfused':>9}{'a/unfused':>10}{'a/naive':>9}{'u/naive':>9}")
        for row, m, md in side:
            print(f"{row['name']:<13}{m:<8}{_fmt(md['analytic']['gbps'], '9.1f')}{_fmt(md['unfused']['gbps'], '9.1f')}"
                  f"{_fmt(md['analytic/unfused'], '10.2f')}{_fmt(md['analytic/naive'], '9.2f')}"
                  f"{_fmt(md.get('unfused/naive'), '9.2f')}")
        print()
    fails = [r["name"] for r in res["rows"] for t in r["targets"] if t["pass"] is False]
    print(f"targets failed: {', '.join(fails) if fails else 'none'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1 << 24, help="elements per tensor (default 16M = 2**24)")
    ap.add_argument("--repeats", type=int, default=11, help="timed repetitions of each variant (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls of each variant first")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--only", default="", help="comma-separated activation names (aliases ok); default all")
    ap.add_argument("--unfused", action="store_true",
                    help="also time the torch-kernel form of activations that have a fused kernel (side by side)")
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="measure with glibc's default malloc (fresh mmapped pages per large tensor)")
    add_output_options(ap)
    args = parse(ap, argv)
    dtype = torch.float32
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        chosen = [get(n) for n in args.only.split(",") if n.strip()] if args.only else specs()
    except ActivationError as e:
        ap.error(str(e))
    rows = []
    for i, spec in enumerate(chosen):
        progress(f"[{i + 1}/{len(chosen)}] timing {spec.name} ...")
        rows.append(bench_spec(spec, args.size, args.repeats, args.warmup, dtype, args.unfused))
    copy_all = [r["modes"][m]["copy"]["gbps"] for r in rows for m in r["modes"]]
    res = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "size": args.size,
        "shape": list(_shape(args.size)),
        "dtype": str(dtype).replace("torch.", ""),
        "repeats": args.repeats,
        "malloc": _MALLOC if __name__ == "__main__" else "unknown (imported)",
        "fresh_tensor_faults": _fresh_tensor_faults(args.size, dtype),
        "byte_model": {
            "fwd": "itemsize * (n_in + n_out)",
            "fwd+bwd": "itemsize * (n_in + n_out) + itemsize * (n_out + 2 * n_in)",
            "copy": "itemsize * 2 * n",
        },
        "copy_gbps": statistics.median(copy_all) if copy_all else float("nan"),
        "rows": rows,
    }
    with tables(args):
        _print_table(res)
    # A benchmark with targets is a check: a missed target fails the run.
    return finish(args, res, failed=[r["name"] for r in res["rows"] for t in r["targets"] if t["pass"] is False])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
