"""Which modules are activations: the catalog's own and torch's, third-party classes from the
declared table (:mod:`actlab.activations.aliases`), and any other parameter-free leaf module
that computes a catalog function elementwise, found by evaluating it on a grid.

So GPT-2's hand-written tanh GELU is one ``gelu_tanh`` row, not a ``tanh`` inside a module.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

from actlab.activations import apply, spec_for_module, specs
from actlab.activations.aliases import THIRD_PARTY
from actlab.activations.spec import ActivationSpec
from actlab.activations import get as get_spec

# Entries a grid cannot tell apart from a plain function, or that change shape or draw random numbers
_NOT_BY_GRID = {"identity", "maxout", "rrelu", "prelu"}
# The grid: [-6, 6] on 257 points (kinks at 0, +-1, +-3 lie on it), as a (1, 257) batch
_GRID = torch.linspace(-6.0, 6.0, 257, dtype=torch.float32)[None, :]
# A match within this fraction of the function's largest value on the grid (float32 rounding of
# a written-out formula is ~1e-7; the nearest distinct entries, GELU and its tanh form, differ by 5e-4)
_TOL = 2e-5


@lru_cache(maxsize=1)
def _references() -> list[tuple[ActivationSpec, torch.Tensor]]:
    out = []
    for s in specs():
        if s.name in _NOT_BY_GRID or any(h.default is None for h in s.params):
            continue
        with torch.no_grad():
            out.append((s, apply(s, _GRID.clone()).float()))
    return out


_MISSING = object()


def _from_table(module: nn.Module) -> tuple[ActivationSpec, dict[str, Any]] | None:
    cls = type(module)
    found = THIRD_PARTY.get(f"{cls.__module__}.{cls.__qualname__}")
    if found is None:
        return None
    rows = found if isinstance(found, list) else [(found[0], found[1], {})]
    for name, params, when in rows:
        if all(getattr(module, k, _MISSING) == v for k, v in when.items()):
            read = {k: (getattr(module, v[1:]) if isinstance(v, str) and v.startswith("@") else v)
                    for k, v in params.items()}
            return get_spec(name), read
    return None


def _by_grid(module: nn.Module) -> tuple[ActivationSpec, dict[str, Any]] | None:
    """Evaluate a parameter-free leaf module on the grid; the catalog entry it matches, if any."""
    if type(module).__module__.startswith("torch.") or any(True for _ in module.children()) \
            or any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
        return None
    try:
        # no gradient, and the random state restored: a module that draws (dropout) leaves training unchanged
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            y = module(_GRID.clone())
    except Exception:  # not a one-tensor elementwise function: not an activation we can name
        return None
    if not isinstance(y, torch.Tensor) or y.shape != _GRID.shape or not y.is_floating_point():
        return None
    y = y.float()
    best, err = None, float("inf")
    for s, ref in _references():
        e = float((y - ref).abs().max()) / max(1.0, float(ref.abs().max()))
        if e < err:
            best, err = s, e
    return (best, {}) if best is not None and err <= _TOL else None


def match_module(module: nn.Module) -> tuple[ActivationSpec, dict[str, Any], str] | None:
    """``(spec, hyperparameters, how)`` for an activation module, ``how`` one of ``"catalog"``
    (actlab's and torch's modules), ``"table"`` (a declared third-party class) or ``"grid"``
    (an unknown module computing a catalog function); ``None`` for anything else."""
    found = spec_for_module(module)
    if found is not None:
        return found[0], found[1], "catalog"
    found = _from_table(module)
    if found is not None:
        return found[0], found[1], "table"
    found = _by_grid(module)
    if found is not None:
        return found[0], found[1], "grid"
    return None


# ---------------------------------------------------------------------------- roles
# Autograd nodes that only move or view data: an activation's use is looked for past them.
_PASS = ("View", "UnsafeView", "Reshape", "T", "Transpose", "Permute", "Expand", "Clone", "Slice", "Select",
         "Split", "SplitWithSizes", "Unbind", "Squeeze", "Unsqueeze", "Contiguous", "ToCopy", "AsStrided",
         "Rsub", "Neg")  # 1 - z of a gate is still a gate
_MATMUL = ("Addmm", "Mm", "Bmm", "Matmul", "Convolution", "Linear", "Baddbmm", "Addmv", "Mv", "Dot")


def _op(node: Any) -> str:
    name = type(node).__name__
    if name.endswith("Backward0"):
        return name[:-len("Backward0")]
    return name.rstrip("0123456789").removesuffix("Backward")


def _has_param(node: Any, depth: int = 3) -> bool:
    """Whether ``node`` reads a parameter (a leaf) directly or through a transpose/view."""
    for child, _ in getattr(node, "next_functions", ()):
        if child is None:
            continue
        if type(child).__name__ == "AccumulateGrad":
            return True
        if depth and _op(child) in _PASS and _has_param(child, depth - 1):
            return True
    return False


def _scales(node: Any, op: str) -> bool:
    """Whether a Mul/Div node scales one signal by a constant (a dropout mask, a number): only one
    operand carries a gradient (and it is not the divisor).  The constant's values are not read:
    reading a saved tensor runs its unpack hooks (activation checkpointing recomputes)."""
    live = [child is not None for child, _ in node.next_functions]
    return sum(live) == 1 and not (op == "Div" and not live[0])


def roles(output: Any, nodes: dict[int, Any], limit: int = 200_000) -> dict[int, str]:
    """How each activation output is used, from the autograd graph of one forward.

    Args:
        output: the model's output (tensors anywhere inside).
        nodes: ``{layer index: grad_fn of that layer's output}``.

    Returns:
        ``{layer index: role}``: ``"hidden"`` when the output feeds a weight (a matmul or
        convolution with a parameter, scaled or masked on the way: dropout), ``"gate"`` when it
        only multiplies other signals (the sigmoid gates of an LSTM-style cell; the probe keeps
        the role only for activations with outputs in ``[0, b]``, so SiLU in a SwiGLU FFN is
        hidden), ``"attention"`` when it only meets other signals
        in a matmul (attention weights), ``"output"`` when it is the model's output (a sigmoid
        or tanh on the logits: its saturation is confidence, and a loss with a log undoes it);
        layers whose use is not found are left out.
    """
    from torch.utils._pytree import tree_flatten

    roots = [t.grad_fn for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    consumers: dict[Any, list[Any]] = {}
    seen: set = set()
    stack = list(roots)
    while stack and len(seen) < limit:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for child, _ in n.next_functions:
            if child is not None:
                consumers.setdefault(child, []).append(n)
                stack.append(child)
    out: dict[int, str] = {}
    ends = set(roots)
    for li, node in nodes.items():
        uses, frontier, visited = set(), list(consumers.get(node, ())), set()
        returned = node in ends
        while frontier:
            c = frontier.pop()
            if c in visited:
                continue
            visited.add(c)
            op = _op(c)
            if op in _PASS:
                returned = returned or c in ends
                frontier += consumers.get(c, [])
            elif op in _MATMUL:
                uses.add("weight" if _has_param(c) else "matmul")
            elif op in ("Mul", "Div"):
                if _scales(c, op):
                    # times a constant or a mask (dropout, a 1/6 scale): the same signal, scaled
                    returned = returned or c in ends
                    frontier += consumers.get(c, [])
                else:
                    uses.add("mul")
            else:
                uses.add("other")
        if not uses:
            if returned:
                out[li] = "output"
            continue
        if "weight" in uses or "other" in uses:
            out[li] = "hidden"
        elif uses == {"matmul"}:
            out[li] = "attention"
        else:
            out[li] = "gate"
    return out
