"""Probe a user's training script unchanged: every model an optimizer steps gets a probe.

:func:`run_script` runs a Python file as ``__main__`` with its own ``sys.argv``.  When
parameters are given to an optimizer (``torch.optim.Optimizer.add_param_group``, which every
torch optimizer calls as it is made and which adds later groups), the outermost modules that own
them get a :class:`~actlab.probe.Probe` each, so the probe sees the first step's forward and
backward.  A global optimizer step pre-hook catches, at an optimizer's first step, parameters
that reached it otherwise (seen from the next step on).  ``Tensor.backward`` on a scalar records
the loss for the loss-trend finding.  All three are undone when the script ends, however it ends.
"""

from __future__ import annotations

import functools
import gc
import runpy
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actlab.probe.probe import Probe


def _roots_owning(params: set[int]) -> list[nn.Module]:
    """The outermost live modules whose parameters include any of ``params`` (by id)."""
    # type(o), not isinstance: isinstance reads __class__, which some lazy objects turn into warnings
    holders = [o for o in gc.get_objects() if issubclass(type(o), nn.Module)
               and any(id(p) in params for p in o.parameters())]
    if not holders:
        return []
    inner: set[int] = set()
    for m in holders:
        inner.update(id(c) for c in m.modules() if c is not m)
    # a compiled wrapper and its module hold the same parameters: keep the wrapper's inner module
    return [m for m in holders if id(m) not in inner and type(m).__name__ != "OptimizedModule"]


class ScriptProbes:
    """The probes attached while a script ran, by model (in the order they were found)."""

    def __init__(self, **probe_kw: Any) -> None:
        self.probe_kw = probe_kw
        self.probes: list[Probe] = []
        self._seen_opts: set[int] = set()
        self._models: set[int] = set()
        self._covered: set[int] = set()  # ids of the parameters some probe's model owns

    def _watch(self, params: Any) -> None:
        """Attach a probe to the outermost modules owning ``params`` that no probe covers yet."""
        ids = {id(p) for p in params} - self._covered
        if not ids:
            return
        for m in _roots_owning(ids):
            if id(m) not in self._models:
                self._models.add(id(m))
                self._covered.update(id(p) for p in m.parameters())
                self.probes.append(Probe(m, **self.probe_kw).attach())

    def _on_step(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if id(opt) in self._seen_opts:
            return
        self._seen_opts.add(id(opt))
        self._watch(p for g in opt.param_groups for p in g["params"])

    def _on_backward(self, loss: torch.Tensor) -> None:
        if loss.dim() == 0 and loss.is_floating_point():
            for p in self.probes:
                if p._attached:
                    p.record_loss(loss)


def run_script(script: str | Path, argv: list[str] | None = None, **probe_kw: Any) -> ScriptProbes:
    """Run ``script`` as ``__main__`` with the probe attached to every model an optimizer steps.

    Args:
        script: path of the Python file.
        argv: its arguments (``sys.argv[1:]`` as the script sees them).
        **probe_kw: keyword arguments for each :class:`~actlab.probe.Probe`.

    Returns:
        :class:`ScriptProbes` (also when the script raised or called ``sys.exit``: the exception
        propagates after the hooks are removed, with the probes attached to ``exc.probes``).
    """
    path = Path(script)
    if not path.is_file():
        raise FileNotFoundError(f"no such script: {str(script)!r}")
    found = ScriptProbes(**probe_kw)
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(found._on_step)
    original = torch.Tensor.backward
    original_add = torch.optim.Optimizer.add_param_group

    @functools.wraps(original_add)
    def add_param_group(self: torch.optim.Optimizer, param_group: dict) -> None:
        original_add(self, param_group)
        found._watch(self.param_groups[-1]["params"])

    def backward(self: torch.Tensor, *a: Any, **k: Any) -> Any:
        found._on_backward(self)
        return original(self, *a, **k)

    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *(argv or [])]
    sys.path.insert(0, str(path.resolve().parent))
    torch.Tensor.backward = backward  # type: ignore[method-assign]
    torch.optim.Optimizer.add_param_group = add_param_group  # type: ignore[method-assign]
    try:
        runpy.run_path(str(path), run_name="__main__")
    except BaseException as e:
        e.probes = found  # type: ignore[attr-defined]
        raise
    finally:
        torch.Tensor.backward = original  # type: ignore[method-assign]
        torch.optim.Optimizer.add_param_group = original_add  # type: ignore[method-assign]
        handle.remove()
        sys.argv, sys.path[:] = saved_argv, saved_path
        for p in found.probes:
            p.detach()
    return found
