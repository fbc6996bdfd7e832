"""The fused float32 kernels (``actlab.activations.kernels``): accuracy against float64, limits,
NaN, the catalog's use of them, and their threading (parallel = serial, forked children, threads).

The catalog tests draw small tensors, which stay on torch's kernels (below ``MIN_NUMEL``); here
``MIN_NUMEL`` is lowered so the same checks reach the fused path.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import subprocess
import sys
import threading

import pytest
import torch
from catalog_cases import TOL, limit_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actlab.activations import apply, get, kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba not installed (or ACTLAB_FUSED=0)")

TOL32 = TOL[torch.float32]
EPS32 = torch.finfo(torch.float32).eps
CASES = sorted(kernels.KINDS.items())
IDS = [name for name, _ in CASES]


@pytest.fixture
def fused_everywhere(monkeypatch):
    monkeypatch.setattr(kernels, "MIN_NUMEL", 0)
    before = torch.get_num_threads()
    if not kernels._pool_ok():  # numba's workqueue layer: the catalog uses the kernels on one thread only
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _sample(n: int = 1 << 15, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    parts = [torch.randn(n, generator=gen) * s for s in (1.0, 4.0, 30.0)]
    parts.append(torch.linspace(-120, 120, 4097))
    big = [0.0, -0.0, 1e-40, -1e-40, 1.1754944e-38, -1.1754944e-38, 1e4, -1e4, 3e38, -3e38, 87.5, -87.5,
           103.9, -103.9, 104.1, -104.1, 1e12, -1e12, 1e13, -1e13]
    parts.append(torch.tensor(big))
    return torch.cat(parts)


def _f64(name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f and f' in float64, from the catalog's declarations (torch's float64 kernels)."""
    spec = get(name)
    x64 = x.double()
    y64 = apply(spec, x64)
    return y64, spec.derivative(x64, y64, spec.resolve())


def _assert_within(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    # 4 float32 ulps of max(|f|, 1), the catalog's tolerance for two correct implementations
    err = (got.double() - want).abs() / want.abs().clamp(min=1.0)
    worst = int(err.argmax())
    assert err.max().item() <= TOL32, f"{what}: error {err.max().item():.3g} at element {worst}"


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_forward_and_derivative_within_4_ulps_of_float64(name, kind):
    x = _sample()
    y64, d64 = _f64(name, x)
    y = kernels.forward(kind, x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    _assert_within(y, y64, f"{name} forward")
    d = kernels.backward(kind, torch.ones_like(x), x)
    _assert_within(d, d64, f"{name} derivative")
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(kernels.backward(kind, g, x), g * d)  # the vjp is g * f'(x), rounded once


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_no_less_accurate_than_torchs_float32_kernels(name, kind):
    # torch's own error against float64, plus one float32 ulp of max(|f|, 1)
    spec = get(name)
    x = _sample(seed=2)
    finite = x.abs() < 1e4  # where torch's kernels are not NaN or overflowing
    x = x[finite]
    y64, d64 = _f64(name, x)
    xb = x.clone().requires_grad_(True)
    yb = spec.builtin(xb, {})
    yb.backward(torch.ones_like(yb))
    scale = y64.abs().clamp(min=1.0)
    ours = ((kernels.forward(kind, x).double() - y64).abs() / scale).max()
    theirs = ((yb.detach().double() - y64).abs() / scale).max()
    assert ours <= theirs + EPS32, f"{name}: forward error {ours:.3g} > torch's {theirs:.3g}"
    scale = d64.abs().clamp(min=1.0)
    ours = ((kernels.backward(kind, torch.ones_like(x), x).double() - d64).abs() / scale).max()
    theirs = ((xb.grad.double() - d64).abs() / scale).max()
    assert ours <= theirs + EPS32, f"{name}: derivative error {ours:.3g} > torch's {theirs:.3g}"


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_limits_at_infinity_and_nan(name, kind):
    spec = get(name)
    x = torch.tensor([-math.inf, math.inf, math.nan, 1.0], dtype=torch.float32)
    y = kernels.forward(kind, x)
    assert y[0].item() == limit_at(spec, {}, -1) and y[1].item() == limit_at(spec, {}, 1)
    assert math.isnan(y[2].item()) and not math.isnan(y[3].item())
    d = kernels.backward(kind, torch.ones_like(x), x)
    assert d[0].item() == 0.0 and d[1].item() == 1.0 and math.isnan(d[2].item())


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(vals=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=64))
def test_finite_float32_inputs_anywhere_in_range(name, kind, vals):
    x = torch.tensor(vals, dtype=torch.float32)
    y64, d64 = _f64(name, x)
    y = kernels.forward(kind, x)
    d = kernels.backward(kind, torch.ones_like(x), x)
    assert torch.isfinite(y).all() and torch.isfinite(d).all()
    _assert_within(y, y64, f"{name} forward")
    _assert_within(d, d64, f"{name} derivative")


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_catalog_uses_the_kernels_and_equals_torchs_builtin(name, kind, fused_everywhere, monkeypatch):
    spec = get(name)
    calls = []
    for fn in ("forward", "backward"):
        real = getattr(kernels, fn)
        monkeypatch.setattr(kernels, fn, lambda *a, real=real, fn=fn: calls.append(fn) or real(*a))
    x = _sample(seed=3)
    x = x[x.abs() < 1e4]
    xa = x.clone().requires_grad_(True)
    ya = apply(spec, xa)
    ya.backward(torch.ones_like(ya))
    assert calls == ["forward", "backward"]
    assert torch.equal(ya.detach(), kernels.forward(kind, x))
    xb = x.clone().requires_grad_(True)
    yb = spec.builtin(xb, {})
    yb.backward(torch.ones_like(yb))
    # Both are float32 approximations: they may differ by their two errors against float64.
    y64, d64 = _f64(name, x)
    for ours, theirs, ref in ((ya.detach(), yb.detach(), y64), (xa.grad, xb.grad, d64)):
        slack = ((theirs.double() - ref).abs() / ref.abs().clamp(min=1.0)).max().item()
        torch.testing.assert_close(ours, theirs, rtol=TOL32 + slack, atol=TOL32 + slack)


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_vmap_runs_the_kernel_and_grad_transforms_stay_exact(name, kind, fused_everywhere, monkeypatch):
    """Under ``vmap`` the Function's vmap rule hands the kernel the whole batch (one plain
    tensor); ``torch.func.grad`` takes the differentiable backward (torch ops), within float32
    rounding of float64, and with the limits at +-inf."""
    spec = get(name)
    calls = []
    real = kernels.forward
    monkeypatch.setattr(kernels, "forward", lambda *a: calls.append(1) or real(*a))
    x = _sample(seed=5)[: 1 << 14].reshape(4, -1).contiguous()
    got = torch.func.vmap(lambda t: apply(spec, t))(x)
    assert calls, "the kernel did not run under vmap"
    assert torch.equal(got, kernels.forward(kind, x))
    xs = torch.tensor([-float("inf"), -3.0, -0.5, 0.0, 0.7, 4.0, float("inf")])
    d = torch.func.vmap(torch.func.grad(lambda t: apply(spec, t)))(xs)
    # (composed of float32 torch ops the derivative rounds a few times more than one kernel: 16 ulps)
    err = ((d[1:-1].double() - _f64(name, xs[1:-1])[1]).abs()).max().item()
    assert err <= 16 * EPS32, f"{name} grad under vmap: error {err:.3g}"
    assert d[0].item() == 0.0 and d[-1].item() == 1.0


def test_swish_at_beta_1_is_silu(fused_everywhere):
    x = _sample(seed=4).requires_grad_(True)
    a = apply(get("swish"), x, beta=1.0)
    (ga,) = torch.autograd.grad(a.sum(), x)
    b = apply(get("silu"), x)
    (gb,) = torch.autograd.grad(b.sum(), x)
    assert torch.equal(a, b) and torch.equal(ga, gb)


def test_fallbacks_keep_torchs_path(fused_everywhere):
    x = _sample(seed=5)
    assert kernels.usable(x)
    assert not kernels.usable(x.double())
    assert not kernels.usable(x.half())
    assert not kernels.usable(x[::2])  # strided view
    assert not kernels.usable(x, torch.ones(x.numel() + 1))
    assert not kernels.usable(x, torch.ones(x.numel(), dtype=torch.float64))
    # A non-contiguous upstream gradient: the vjp falls back to torch's kernel, clamped, still exact.
    xg = torch.tensor([-math.inf, math.inf, 0.5] * 1000).requires_grad_(True)
    y = apply(get("silu"), xg)
    g = torch.ones(2 * y.numel())[::2]
    (gx,) = torch.autograd.grad(y, xg, g)
    assert gx[0].item() == 0.0 and gx[1].item() == 1.0 and torch.isfinite(gx).all()


def test_default_threshold_keeps_small_tensors_on_torch(threads):
    threads(1)
    assert not kernels.usable(torch.zeros(kernels.MIN_NUMEL - 1))
    assert kernels.usable(torch.zeros(kernels.MIN_NUMEL))


def test_workqueue_layer_leaves_multithreaded_torch_its_own_kernels():
    code = ("import torch; from actlab.activations import kernels; x = torch.zeros(kernels.MIN_NUMEL); "
            "torch.set_num_threads(2); a = kernels.usable(x); torch.set_num_threads(1); "
            "print(a, kernels.usable(x), kernels._pool_layer)")
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "workqueue"]


@pytest.mark.parametrize(("name", "kind"), CASES, ids=IDS)
def test_parallel_equals_serial_bit_for_bit(name, kind, threads):
    x = _sample(1 << 17, seed=6)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    threads(1)
    y1, d1 = kernels.forward(kind, x), kernels.backward(kind, g, x)
    threads(2)
    y2, d2 = kernels.forward(kind, x), kernels.backward(kind, g, x)
    assert torch.equal(y1, y2) and torch.equal(d1, d2)


def _child(q) -> None:
    # Tensors below torch's parallel grain (32768): torch's own GNU OpenMP pool is not fork-safe
    # either, so the child stays off it and only numba's pool is at stake.
    torch.set_num_threads(2)
    x = torch.linspace(-5, 5, 1 << 12)
    q.put(kernels.forward(kernels.SILU, x).sum().item())


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_forked_child_after_a_parallel_launch_runs(threads):
    """With numba's GNU OpenMP layer a parallel launch in such a child aborts the process
    ("fork() called from a process already using GNU OpenMP"); the child must run serially."""
    threads(2)
    x = torch.linspace(-5, 5, 1 << 12)
    want = kernels.forward(kernels.SILU, x).sum().item()  # starts numba's thread pool here
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert q.get(timeout=5) == want


def test_concurrent_calls_from_threads(threads):
    threads(2)
    xs = [_sample(1 << 14, seed=s) for s in range(4)]
    want = [kernels.forward(kernels.GELU, x) for x in xs]
    got: list = [None] * len(xs)
    errors: list = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                got[i] = kernels.forward(kernels.GELU, xs[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_env_switch_turns_the_kernels_off():
    code = "from actlab.activations import kernels; print(kernels.available())"
    env = {**os.environ, "ACTLAB_FUSED": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
