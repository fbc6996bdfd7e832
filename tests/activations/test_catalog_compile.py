"""``torch.compile`` on CPU: the generic autograd Function traces as one graph (no graph break,
``fullgraph=True``) for every catalog activation, and inductor's compiled forward and backward
equal eager for a few of them (compiling is slow, so inductor sees four)."""

from __future__ import annotations

import warnings

import pytest
import torch
from catalog_cases import SPECS, group_size, points_away_from_kinks

from actlab.activations import apply, get
from actlab.nn import module_class

pytestmark = pytest.mark.slow
BACKEND = "aot_eager"


def _fwd_bwd(fn, x: torch.Tensor, params=()):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    g = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    y.backward(g)
    grads = [x.grad] + [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    return y.detach(), grads


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_every_activation_traces_without_graph_break():
    """Dynamo + AOTAutograd (no codegen, so it is quick) with fullgraph=True: a graph break (the
    Function looked up through lru_cache, a non-contiguous out=, ...) fails here."""
    for spec in SPECS:
        torch._dynamo.reset()
        for params in ({},):
            x = points_away_from_kinks(spec, params, 8, seed=41, dtype=torch.float32).reshape(2, -1)

            def f(x, spec=spec, params=params):
                return apply(spec, x, **params)

            compiled = torch.compile(f, backend=BACKEND, fullgraph=True)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch-internal
                yc, gc = _fwd_bwd(compiled, x)
            ye, ge = _fwd_bwd(f, x)
            torch.testing.assert_close(yc, ye, rtol=0, atol=0, msg=spec.name)
            torch.testing.assert_close(gc[0], ge[0], rtol=0, atol=0, msg=spec.name)


def _specs_for_inductor():
    """Sigmoid (derivative from the output), GELU (from the input), a grouped spec (maxout) and
    a learnable one (PReLU as a module), each found through the registry."""
    by_kind = [
        get("sigmoid"),
        get("gelu"),
        next(s for s in SPECS if not s.elementwise),
    ]
    return by_kind


@pytest.mark.parametrize("spec", _specs_for_inductor(), ids=lambda s: s.name)
def test_inductor_matches_eager(spec):
    x = points_away_from_kinks(spec, {}, 64, seed=42, dtype=torch.float32).reshape(4, -1)

    def f(x):
        return apply(spec, x)

    compiled = torch.compile(f, fullgraph=True)
    yc, gc = _fwd_bwd(compiled, x)
    ye, ge = _fwd_bwd(f, x)
    torch.testing.assert_close(yc, ye, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gc[0], ge[0], rtol=1e-6, atol=1e-6)


def test_inductor_learnable_module_matches_eager():
    spec = next(s for s in SPECS if s.learnable)
    m = module_class(spec)(num_parameters=4)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.linspace(-0.2, 0.5, p.numel()))
    x = torch.randn(3, 4, 5)
    compiled = torch.compile(m, fullgraph=True)
    yc, gc = _fwd_bwd(compiled, x, list(m.parameters()))
    ye, ge = _fwd_bwd(m, x, list(m.parameters()))
    torch.testing.assert_close(yc, ye, rtol=1e-6, atol=1e-6)
    for a, b in zip(gc, ge):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert group_size(spec, {}) == 1
