"""``torch.compile`` on CPU: the generic autograd Function traces as one graph (no graph break,
``fullgraph=True``) for every catalog activation, and inductor's compiled forward and backward
equal eager for a few of them (compiling is slow, so inductor sees four)."""

from __future__ import annotations

import warnings

import pytest
import torch
from catalog_cases import SPECS, points_away_from_kinks

from actlab.activations import apply, get
from actlab.nn import module_class

pytestmark = pytest.mark.slow
# Dynamo + AOTAutograd without codegen: catches every graph break in forward and backward quickly.
BACKEND = "aot_eager"


def _fwd_bwd(fn, xs: list[torch.Tensor], params=()):
    """Outputs of ``fn(*xs)`` (a tuple) and the gradients of a fixed weighted sum of them."""
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    ys = fn(*xs)
    loss = sum((y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum() for y in ys)
    loss.backward()
    grads = [x.grad for x in xs] + [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    return [y.detach() for y in ys], grads


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _inputs(specs):
    return [points_away_from_kinks(s, {}, 8, seed=41 + i, dtype=torch.float32).reshape(2, -1)
            for i, s in enumerate(specs)]


def test_every_activation_traces_without_graph_break():
    """All activations in one function, traced by Dynamo + AOTAutograd (no codegen, so it is
    quick) with fullgraph=True: a graph break anywhere in a forward or backward (the Function
    looked up through lru_cache, a non-contiguous out=, ...) fails here."""

    def f(*xs):
        return tuple(apply(s, x) for s, x in zip(SPECS, xs))

    xs = _inputs(SPECS)
    compiled = torch.compile(f, backend=BACKEND, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch-internal
        yc, gc = _fwd_bwd(compiled, xs)
    ye, ge = _fwd_bwd(f, xs)
    for spec, a, b, ga, gb in zip(SPECS, yc, ye, gc, ge):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=spec.name)
        torch.testing.assert_close(ga, gb, rtol=0, atol=0, msg=spec.name)


def test_inductor_matches_eager():
    """Inductor (C++ codegen) on sigmoid (derivative from the output), GELU (from the input), a
    grouped spec (maxout) and a learnable one as a module (PReLU, per channel), compiled together
    as one graph so that the suite pays for one C++ build."""
    grouped = next(s for s in SPECS if not s.elementwise)
    learnable = next(s for s in SPECS if s.learnable)
    plain = [get("sigmoid"), get("gelu"), grouped]
    m = module_class(learnable)(num_parameters=4)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.linspace(-0.2, 0.5, p.numel()))

    def f(*xs):
        return (*(apply(s, x) for s, x in zip(plain, xs[:-1])), m(xs[-1]))

    xs = [points_away_from_kinks(s, {}, 64, seed=42, dtype=torch.float32).reshape(4, -1) for s in plain]
    xs.append(points_away_from_kinks(learnable, {}, 60, seed=43, dtype=torch.float32).reshape(3, 4, 5))
    compiled = torch.compile(f, fullgraph=True)
    yc, gc = _fwd_bwd(compiled, xs, list(m.parameters()))
    ye, ge = _fwd_bwd(f, xs, list(m.parameters()))
    names = [s.name for s in plain] + [learnable.name]
    for name, a, b in zip(names, yc, ye):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=f"{name} forward")
    for name, a, b in zip(names + [f"{learnable.name} parameter"], gc, ge):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{name} backward")
