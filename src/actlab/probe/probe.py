"""The probe: hooks on any ``nn.Module`` that record, per layer and on a schedule, what the
activation functions do to training, keeping every statistic on the device until it is read.

Cost model (why the code looks the way it does).  On a 10-layer MLP the statistics kernels, not
the hooks, are what costs: ``std_mean`` and boolean masks with ``count_nonzero`` cost 30-600 us
each on a 256x256 CPU tensor, while a ``sum``, a norm or a per-unit ``amax`` cost 4-20 us.  So
each activation tensor gets one ``sum``, one norm, the float-only saturation counts of its
:class:`~actlab.probe.stats.StatPlan` and one or two per-unit ``amax``/``amin``; the scalars of
every layer are stacked in one call at the end of the forward, dead-unit bookkeeping runs once
over all layers' units together, and gradients are read once after backward (queued on the
autograd engine, so no optimizer hook is needed).  Nothing calls ``.item()``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from actlab.activations import get as get_spec
from actlab.activations import spec_for_function, spec_for_module
from actlab.activations.spec import ActivationSpec
from actlab.probe.stats import StatPlan, plan_for

# Modules whose outputs are channel-first (N, C, ...): their units are channels (dim 1).
_CHANNEL_FIRST = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
)
_NAN = math.nan


@dataclass
class LayerRecord:
    """What the probe measured for one layer at one recorded step (NaN: not measured there).

    Attributes:
        step: training step (0-based).
        layer: qualified module name; functional activations are ``"<caller>:<activation>"``.
        order: position of the layer in the forward pass (execution order).
        kind: ``"activation"`` or ``"parametrised"``.
        module: module class name (function name for functional activations).
        activation: catalog name of the layer's activation (``""`` for parametrised layers).
        mean, std: of the layer's output over every element.
        saturated: fraction of (sample, unit) with ``|f'| < saturation * max|f'|``.
        inactive: fraction of units whose derivative was zero for every sample of this step.
        dead: fraction of units whose derivative was zero on every recorded step of the window.
        out_rms: root mean square of the layer's output.
        out_grad_norm: norm of the loss gradient with respect to the layer's output.
        grad_norm: norm of the gradients of the layer's own parameters (all tensors together).
        grad_rms: ``grad_norm / sqrt(numel)``, comparable across layers of different sizes.
        weight_norm: norm of the layer's parameters (steps where the update ratio is measured).
        update_ratio: ``||w_after - w_before|| / ||w_before||`` over the optimizer step.
        nonfinite: the output had a NaN or Inf.
        grad_nonfinite: a parameter or output gradient had a NaN or Inf.
    """

    step: int
    layer: str
    order: int
    kind: str
    module: str
    activation: str
    mean: float = _NAN
    std: float = _NAN
    saturated: float = _NAN
    inactive: float = _NAN
    dead: float = _NAN
    out_rms: float = _NAN
    out_grad_norm: float = _NAN
    grad_norm: float = _NAN
    grad_rms: float = _NAN
    weight_norm: float = _NAN
    update_ratio: float = _NAN
    nonfinite: bool = False
    grad_nonfinite: bool = False


@dataclass(eq=False)
class ProbeLayer:
    """A layer the probe watches (activation, parametrised, or both as PReLU is)."""

    index: int
    name: str
    kind: str
    module: str
    spec: ActivationSpec | None = None
    params: dict = field(default_factory=dict)
    param_names: list[str] = field(default_factory=list)
    numel: int = 0
    order: int = 1 << 30
    chain: bool = False  # has a weight matrix/kernel: part of the depth profile of gradients

    @property
    def activation(self) -> str:
        return self.spec.name if self.spec is not None else ""


@dataclass
class _Call:
    layer: int
    kind: str  # "act" | "param"
    offset: int
    nsat: int = 0
    coefs: tuple = ()
    const: float = 0.0
    n: int = 0
    units: int = 0


@dataclass
class _FwRow:
    step: int
    calls: list[_Call]
    scalars: Tensor | None
    dead_layers: list[int]
    dead_units: list[int]
    dead: Tensor | None


@dataclass
class _BwRow:
    step: int
    params: list[int]
    out_layers: list[int]
    norms: Tensor


@dataclass
class _UpRow:
    step: int
    params: list[int]
    norms: Tensor


class _FunctionalMode(TorchFunctionMode):
    """Sees activation functions called inside ``forward`` (``F.gelu``, ``torch.relu``...)."""

    def __init__(self, probe: "Probe") -> None:
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        spec = spec_for_function(func)
        if spec is not None:
            self.probe._on_function(func, spec, args, kwargs, out)
        return out


_SIGNATURES: dict[Any, inspect.Signature | None] = {}


def _bind(func: Callable, args: tuple, kwargs: dict) -> dict:
    if func not in _SIGNATURES:
        try:
            _SIGNATURES[func] = inspect.signature(func)
        except (TypeError, ValueError):
            _SIGNATURES[func] = None
    sig = _SIGNATURES[func]
    if sig is None:
        return dict(kwargs)
    try:
        return dict(sig.bind(*args, **kwargs).arguments)
    except TypeError:
        return dict(kwargs)


def _first_tensor(out: Any) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    for t in tree_flatten(out)[0]:
        if isinstance(t, Tensor):
            return t
    return None


def _norm(t: Tensor) -> Tensor:
    if t.is_sparse:
        t = t.coalesce().values()
    return torch.linalg.vector_norm(t)


def _norms(ts: list[Tensor]) -> list[Tensor]:
    # torch._foreach_norm is one launch on CUDA but a slow loop on CPU (measured 4x the plain loop).
    if ts and ts[0].is_cuda and not any(t.is_sparse for t in ts):
        return list(torch._foreach_norm(ts))
    return [_norm(t) for t in ts]


class Probe:
    """Watch a model train: gradient norms, activation statistics, saturation judged by each
    layer's own activation, dead units, update ratios and the first NaN, with findings and advice.

    Attach it to any ``nn.Module`` without changing the model's code.  A step is counted at each
    training-mode forward of the root module, so a plain training loop needs no call; call
    :meth:`step` once per iteration instead for explicit control (gradient accumulation).
    Statistics stay on the device and are synced only when read (:meth:`records`,
    :meth:`findings`...).  The probe never changes the numbers of training.

    Args:
        model: the model to watch.
        every: record on steps where ``step % every == 0``. Default: ``1``.
        window: a unit is dead when its derivative was zero for every sample on every recorded
            step of the last ``window`` steps. Default: ``50``.
        saturation: a (sample, unit) is saturated when ``|f'(z)| < saturation * max|f'|`` with f
            the layer's own activation from the catalog. Default: ``0.05``.
        update_every: measure the update-to-weight ratio on steps where
            ``step % update_every == 0`` (rounded up to a multiple of ``every``); it copies the
            weights, so it runs less often than the rest. Default: ``10``.
        thresholds: detector thresholds (:class:`~actlab.probe.findings.Thresholds`).

    Example::

        >>> with Probe(model) as probe:
        ...     for x, y in loader:
        ...         opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
        >>> probe.summary()
        >>> for f in probe.findings(): print(f.message)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 1,
        window: int = 50,
        saturation: float = 0.05,
        update_every: int = 10,
        thresholds: Any = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"Probe needs a torch.nn.Module, got {type(model).__name__}")
        for name, v in (("every", every), ("window", window), ("update_every", update_every)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                what = {"every": "record every k steps", "window": "steps over which a unit must stay dead",
                        "update_every": "measure update ratios every k steps"}[name]
                raise ValueError(f"{name} must be a positive integer ({what}), got {v!r}")
        if not isinstance(saturation, (int, float)) or not 0 < saturation < 1:
            raise ValueError(f"saturation must be a fraction of max|f'| in (0, 1), got {saturation!r}")
        from actlab.probe.findings import Thresholds

        self.model = model
        self.every = every
        self.window = window
        self.saturation = float(saturation)
        self.update_every = -(-update_every // every) * every
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self._window_records = -(-window // every)

        self.layers: list[ProbeLayer] = []
        self._by_module: dict[int, ProbeLayer] = {}
        self._modules: dict[int, tuple[str, nn.Module]] = {}
        self._act_ids: set[int] = set()
        self._params: list[tuple[int, str, nn.Parameter]] = []
        self._discover()

        self._handles: list[Any] = []
        self._attached = False
        self._step = -1
        self._auto = True
        self._recording = False
        self._seq = 0
        self._order_counter = 0
        self._last_channel_first = False
        self._mode: _FunctionalMode | None = None
        self._mode_on = False
        self._discovered = False
        self._discover_handles: list[Any] = []
        self._callers: dict[int, nn.Module] = {}
        self._stack: list[nn.Module] = []
        self._fcount: dict[int, int] = {}
        self._flayers: dict[tuple, ProbeLayer] = {}
        self._caller_handles: list[Any] = []
        # per-forward buffers
        self._scalars: list[Tensor] = []
        self._calls: list[_Call] = []
        self._units: dict[int, list] = {}
        self._out_grads: list[tuple[int, Tensor]] = []
        self._bw_step = -1
        self._bw_queued = False
        # results (device)
        self._fw_rows: list[_FwRow] = []
        self._bw_rows: list[_BwRow] = []
        self._up_rows: list[_UpRow] = []
        self._snapshot: tuple[int, list[Tensor]] | None = None
        self._streak: Tensor | None = None
        self._layout: tuple = ()
        self._seg: Tensor | None = None
        self._offsets: dict[int, tuple[int, int]] = {}
        self._born: list[Any] = []
        self._in_born = False
        self._host: Any = None
        self._host_key: tuple = ()

    # ------------------------------------------------------------------ layers
    def _new_layer(self, name: str, kind: str, module: str, spec: ActivationSpec | None = None,
                   params: dict | None = None) -> ProbeLayer:
        layer = ProbeLayer(len(self.layers), name, kind, module, spec, dict(params or {}))
        self.layers.append(layer)
        self._host = None
        return layer

    def _discover(self) -> None:
        for name, m in self.model.named_modules():
            self._modules[id(m)] = (name, m)
            found = spec_for_module(m)
            own = [(n, p) for n, p in m.named_parameters(recurse=False) if p.requires_grad]
            layer = None
            if found is not None and found[0].name != "identity":
                spec, params = found
                layer = self._new_layer(name or type(m).__name__, "activation", type(m).__name__, spec, params)
                self._act_ids.add(id(m))
            elif own:
                layer = self._new_layer(name or type(m).__name__, "parametrised", type(m).__name__)
                layer.chain = not isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and any(p.dim() >= 2 for _, p in own)
            if layer is None:
                continue
            self._by_module[id(m)] = layer
            for n, p in own:
                layer.param_names.append(f"{name}.{n}" if name else n)
                layer.numel += p.numel()
                self._params.append((layer.index, layer.param_names[-1], p))
        if not self.layers:
            raise ValueError(
                f"the probe found no layer it recognises in {type(self.model).__name__}: no parameters to "
                "watch and no activation module (actlab's or torch's, e.g. nn.ReLU). Give it a model with "
                "Linear/Conv/RNN/norm layers or activation modules."
            )
        self._plans = {}
        for layer in self.layers:
            if layer.spec is not None:
                self._plans[layer.index] = self._plan(layer.spec, layer.params)

    def _plan(self, spec: ActivationSpec, params: dict) -> StatPlan:
        return plan_for(spec, params, self.saturation)

    # ------------------------------------------------------------------ attach
    def attach(self) -> "Probe":
        """Register the hooks (idempotent). Returns ``self``."""
        if self._attached:
            return self
        m = self.model
        self._handles.append(m.register_forward_pre_hook(self._root_pre))
        self._handles.append(m.register_forward_hook(self._root_post, always_call=True))
        for _, mod in self._modules.values():
            layer = self._by_module.get(id(mod))
            if layer is None:
                continue
            if layer.kind == "activation":
                self._handles.append(mod.register_forward_hook(self._act_hook))
            else:
                self._handles.append(mod.register_forward_hook(self._param_hook))
        if self._discovered:
            self._install_caller_hooks()
        self._attached = True
        return self

    def detach(self) -> "Probe":
        """Remove every hook; what was recorded stays readable."""
        if self._mode_on:
            self._exit_mode()
        for h in self._handles + self._caller_handles + self._discover_handles:
            h.remove()
        self._handles, self._caller_handles, self._discover_handles = [], [], []
        self._attached = False
        self._recording = False
        return self

    def __enter__(self) -> "Probe":
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._attached:
                self.detach()
        except Exception:
            pass

    # ------------------------------------------------------------------ steps
    @property
    def current_step(self) -> int:
        """The step the next (or current) forward belongs to."""
        return max(self._step, 0)

    def step(self) -> int:
        """Advance the step counter by one and stop counting forwards automatically.

        Call it once per iteration (before or after the forward; the first forward is step 0).
        Returns the new step.
        """
        self._auto = False
        self._step += 1
        return self._step

    def _is_record_step(self, step: int) -> bool:
        return step >= 0 and step % self.every == 0

    # ------------------------------------------------------------------ forward hooks
    def _root_pre(self, module: nn.Module, args: Any) -> None:
        if self._in_born:
            return
        if self._snapshot is not None:
            self._finish_update()
        if not module.training:
            return
        if self._auto:
            self._step += 1
        step = max(self._step, 0)
        if not self._is_record_step(step):
            return
        self._start_recording(step)

    def _start_recording(self, step: int) -> None:
        self._recording = True
        self._rec_step = step
        self._scalars, self._calls, self._units = [], [], {}
        self._out_grads = []
        self._stack = []
        self._fcount = {}
        self._last_channel_first = False
        if not self._discovered:
            self._begin_discovery()
            self._enter_mode()
        elif self._callers:
            self._enter_mode()

    def _root_post(self, module: nn.Module, args: Any, output: Any) -> None:
        if not self._recording:
            return
        if self._mode_on:
            self._exit_mode()
        if not self._discovered:
            self._end_discovery()
        self._recording = False
        if output is None:  # the forward raised
            return
        self._finish_forward(output)

    def _enter_mode(self) -> None:
        self._mode = _FunctionalMode(self)
        self._mode.__enter__()
        self._mode_on = True

    def _exit_mode(self) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
        self._mode_on = False

    # discovery of modules that call activation functions inside forward
    def _begin_discovery(self) -> None:
        for _, mod in self._modules.values():
            if mod is self.model:
                continue
            self._discover_handles.append(mod.register_forward_pre_hook(self._push))
            self._discover_handles.append(mod.register_forward_hook(self._pop, always_call=True))

    def _end_discovery(self) -> None:
        for h in self._discover_handles:
            h.remove()
        self._discover_handles = []
        self._discovered = True
        self._install_caller_hooks()

    def _install_caller_hooks(self) -> None:
        for h in self._caller_handles:
            h.remove()
        self._caller_handles = []
        watch: dict[int, nn.Module] = {}
        for cid, caller in self._callers.items():
            if caller is self.model:
                continue
            watch[cid] = caller
            for sub in caller.modules():
                if id(sub) in self._act_ids:
                    watch[id(sub)] = sub
        if any(c is self.model for c in self._callers.values()):
            for i in self._act_ids:
                watch[i] = self._modules[i][1]
        for mod in watch.values():
            self._caller_handles.append(mod.register_forward_pre_hook(self._push))
            self._caller_handles.append(mod.register_forward_hook(self._pop, always_call=True))

    def _push(self, module: nn.Module, args: Any) -> None:
        if self._recording:
            self._stack.append(module)
            self._fcount[id(module)] = 0

    def _pop(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._recording and self._stack and self._stack[-1] is module:
            self._stack.pop()

    def _on_function(self, func: Callable, spec: ActivationSpec, args: tuple, kwargs: dict, out: Any) -> None:
        if not self._recording or not isinstance(out, Tensor):
            return
        current = self._stack[-1] if self._stack else self.model
        if id(current) in self._act_ids:
            return
        if not self._discovered:
            self._callers[id(current)] = current
        bound = _bind(func, args, kwargs) if (len(args) > 1 or kwargs) else {}
        if spec.name == "gelu" and bound.get("approximate", "none") == "tanh":
            spec = get_spec("gelu_tanh")
        params = {hp.name: bound[hp.name] for hp in spec.params if hp.name in bound}
        if spec.name == "prelu" and "weight" in bound:
            params["negative_slope"] = bound["weight"]
        k = self._fcount.get(id(current), 0)
        self._fcount[id(current)] = k + 1
        key = (id(current), spec.name, k)
        layer = self._flayers.get(key)
        if layer is None:
            cname = self._modules.get(id(current), ("", current))[0] or "<root>"
            name = f"{cname}:{spec.name}" + (f"#{k}" if k else "")
            layer = self._new_layer(name, "activation", getattr(func, "__name__", str(func)), spec, params)
            self._flayers[key] = layer
        x = args[0] if args and isinstance(args[0], Tensor) else bound.get("input")
        if any(isinstance(v, Tensor) for v in params.values()):
            plan = self._plan(spec, params)
        else:
            plan = self._plans.get(layer.index)
            if plan is None or params != layer.params or plan.spec is not spec:
                plan = self._plan(spec, params)
                if params == layer.params:
                    self._plans[layer.index] = plan
        self._act_call(layer, plan, x if isinstance(x, Tensor) else None, out)

    def _see(self, layer: ProbeLayer) -> None:
        if layer.order == 1 << 30:
            layer.order = self._order_counter
            self._order_counter += 1

    def _act_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._recording or not isinstance(output, Tensor):
            return
        layer = self._by_module[id(module)]
        plan = self._plans[layer.index]
        if layer.spec is not None and layer.spec.learnable:
            plan = self._plan(layer.spec, spec_for_module(module)[1])
        x = args[0] if args and isinstance(args[0], Tensor) else None
        self._act_call(layer, plan, x, output)

    def _param_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._recording:
            return
        layer = self._by_module[id(module)]
        self._see(layer)
        self._last_channel_first = isinstance(module, _CHANNEL_FIRST)
        y = _first_tensor(output)
        if y is None or not y.is_floating_point() or y.numel() == 0:
            return
        with torch.no_grad():
            q = torch.linalg.vector_norm(y.detach())
        self._calls.append(_Call(layer.index, "param", len(self._scalars), n=y.numel()))
        self._scalars.append(q)
        self._grad_hook(layer.index, y)

    def _grad_hook(self, index: int, y: Tensor) -> None:
        if y.requires_grad and torch.is_grad_enabled():
            out_grads = self._out_grads
            y.register_hook(lambda g: out_grads.append((index, g)))

    def _unit_dim(self, v: Tensor) -> int:
        if v.dim() >= 4 or (v.dim() == 3 and self._last_channel_first):
            return 1
        return -1

    def _act_call(self, layer: ProbeLayer, plan: StatPlan | None, x: Tensor | None, y: Tensor) -> None:
        self._see(layer)
        if not y.is_floating_point() or y.numel() == 0 or plan is None:
            return
        with torch.no_grad():
            v = y.detach()
            xd = x.detach() if (x is not None and plan.needs_input) else None
            s = v.sum()
            q = torch.linalg.vector_norm(v)
            ts, cs, k = plan.saturated_count(xd, v)
            if plan.dead != "none" and v.dim() >= 1:
                ud = self._unit_dim(v)
                if ud == 1:
                    dims = tuple(d for d in range(v.dim()) if d != 1)
                    amax = v.amax(dims) if plan.dead in ("max", "both") else None
                    amin = v.amin(dims) if plan.dead in ("min", "both") else None
                else:
                    w = v.reshape(-1, v.shape[-1])
                    amax = w.amax(0) if plan.dead in ("max", "both") else None
                    amin = w.amin(0) if plan.dead in ("min", "both") else None
                units = (amax if amax is not None else amin).numel()
                prev = self._units.get(layer.index)
                if prev is None:
                    self._units[layer.index] = [plan, amax, amin]
                elif prev[0] is plan and (prev[1] if prev[1] is not None else prev[2]).shape == (amax if amax is not None else amin).shape:
                    # the same layer called again in this forward (RNN loop, shared module)
                    if amax is not None:
                        prev[1] = torch.maximum(prev[1], amax)
                    if amin is not None:
                        prev[2] = torch.minimum(prev[2], amin)
            else:
                units = v.shape[-1] if v.dim() else 1
        self._calls.append(_Call(layer.index, "act", len(self._scalars), len(ts), tuple(cs), k, v.numel(), units))
        self._scalars.extend([s, q, *ts])
        self._grad_hook(layer.index, y)

    # ------------------------------------------------------------------ end of forward
    def _finish_forward(self, output: Any) -> None:
        step = self._rec_step
        calls, scalars = self._calls, self._scalars
        self._calls, self._scalars = [], []
        S = None
        if scalars:
            if len({t.dtype for t in scalars}) > 1:
                scalars = [t.float() for t in scalars]
            S = torch.stack(scalars)
        dead_layers, dead_units, D = self._dead_update()
        self._fw_rows.append(_FwRow(step, calls, S, dead_layers, dead_units, D))
        self._host = None
        self._bw_queued = False
        self._bw_step = step
        if torch.is_grad_enabled():
            # whichever output the loss uses is reached first in backward; one callback per backward
            for t in tree_flatten(output)[0]:
                if isinstance(t, Tensor) and t.requires_grad:
                    t.register_hook(self._on_root_grad)

    def _dead_update(self) -> tuple[list[int], list[int], Tensor | None]:
        units, self._units = self._units, {}
        if not units:
            return [], [], None
        # one layout for all layers (grouped by plan), so the streak update is a few kernels in all
        groups: dict[int, list[int]] = {}
        plans: dict[int, StatPlan] = {}
        for li, (plan, amax, amin) in units.items():
            groups.setdefault(id(plan), []).append(li)
            plans[id(plan)] = plan
        order = [li for g in groups.values() for li in g]
        sizes = [(units[li][1] if units[li][1] is not None else units[li][2]).numel() for li in order]
        layout = tuple(zip(order, sizes))
        dev = next(t for t in (units[order[0]][1], units[order[0]][2]) if t is not None).device
        if layout != self._layout:
            self._relayout(layout, dev)
        masks = []
        for gid, lis in groups.items():
            plan = plans[gid]
            amax = [units[li][1] for li in lis]
            amin = [units[li][2] for li in lis]
            cat_max = (amax[0] if len(amax) == 1 else torch.cat(amax)) if amax[0] is not None else None
            cat_min = (amin[0] if len(amin) == 1 else torch.cat(amin)) if amin[0] is not None else None
            masks.append(plan.dead_mask(cat_max, cat_min))
        dead_now = masks[0] if len(masks) == 1 else torch.cat(masks)
        streak = self._streak
        streak.add_(1).mul_(dead_now)
        L = len(order)
        counts = torch.zeros(2, L, dtype=torch.float32, device=dev)
        counts[0].index_add_(0, self._seg, dead_now.to(torch.float32))
        counts[1].index_add_(0, self._seg, (streak >= self._window_records).to(torch.float32))
        return order, sizes, counts

    def _relayout(self, layout: tuple, device: torch.device) -> None:
        total = sum(n for _, n in layout)
        new = torch.zeros(total, dtype=torch.int32, device=device)
        offsets: dict[int, tuple[int, int]] = {}
        off = 0
        seg = []
        for pos, (li, n) in enumerate(layout):
            offsets[li] = (off, n)
            old = self._offsets.get(li)
            if old is not None and old[1] == n and self._streak is not None:
                new[off:off + n] = self._streak[old[0]:old[0] + n]
            seg.append(torch.full((n,), pos, dtype=torch.long))
            off += n
        self._streak = new
        self._offsets = offsets
        self._layout = layout
        self._seg = torch.cat(seg).to(device)

    # ------------------------------------------------------------------ backward
    def _on_root_grad(self, grad: Tensor) -> None:
        if not self._bw_queued:
            self._bw_queued = True
            step = self._bw_step
            out_grads = self._out_grads
            torch.autograd.Variable._execution_engine.queue_callback(lambda: self._after_backward(step, out_grads))

    def _after_backward(self, step: int, out_grads: list[tuple[int, Tensor]]) -> None:
        with torch.no_grad():
            idx = [i for i, (_, _, p) in enumerate(self._params) if p.grad is not None]
            grads = [self._params[i][2].grad for i in idx]
            outs = [g for _, g in out_grads]
            ts = _norms(grads + outs)
            if ts:
                if len({t.dtype for t in ts}) > 1:
                    ts = [t.float() for t in ts]
                self._bw_rows.append(_BwRow(step, idx, [li for li, _ in out_grads], torch.stack(ts)))
            out_grads.clear()
            if step % self.update_every == 0 and self._params:
                self._snapshot = (step, [p.detach().clone() for _, _, p in self._params])
        self._host = None

    def _finish_update(self) -> None:
        step, snaps = self._snapshot  # type: ignore[misc]
        self._snapshot = None
        with torch.no_grad():
            params = [p.detach() for _, _, p in self._params]
            if any(p.shape != s.shape for p, s in zip(params, snaps)):
                return
            diffs = torch._foreach_sub(params, snaps)
            ts = _norms(diffs) + _norms(snaps)
            if len({t.dtype for t in ts}) > 1:
                ts = [t.float() for t in ts]
            self._up_rows.append(_UpRow(step, list(range(len(params))), torch.stack(ts)))
        self._host = None

    # ------------------------------------------------------------------ born dead
    def born_dead(self, batch: Any) -> list:
        """Check one batch at initialisation for units that are dead before training starts.

        Runs the model on ``batch`` (a tensor, or a tuple/dict of arguments) without gradients,
        with the random state and buffers (BatchNorm statistics) restored afterwards, so training
        is unchanged; the step counter does not move.  Returns the ``born_dead`` findings (also
        included in :meth:`findings`).
        """
        from actlab.probe.findings import born_dead_findings

        attached = self._attached
        self.attach()
        buffers = {k: b.detach().clone() for k, b in self.model.named_buffers()}
        saved = (self._fw_rows, self._bw_rows, self._streak, self._layout, self._offsets, self._seg, self._step)
        self._fw_rows, self._bw_rows = [], []
        self._streak, self._layout, self._offsets, self._seg = None, (), {}, None
        saved_window = self._window_records
        self._window_records = 1
        try:
            devices = [b.device for b in buffers.values()] + [p.device for _, _, p in self._params]
            cuda = sorted({d.index or 0 for d in devices if d.type == "cuda"})
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                self._in_born = True
                self._start_recording(0)
                if isinstance(batch, dict):
                    self.model(**batch)
                elif isinstance(batch, (tuple, list)):
                    self.model(*batch)
                else:
                    self.model(batch)
            rows = self._fw_rows
        finally:
            self._in_born = False
            self._recording = False
            self._window_records = saved_window
            (self._fw_rows, self._bw_rows, self._streak, self._layout, self._offsets, self._seg, self._step) = saved
            with torch.no_grad():
                for k, b in self.model.named_buffers():
                    if k in buffers:
                        b.copy_(buffers[k])
            if not attached:
                self.detach()
        fractions: dict[str, float] = {}
        for row in rows:
            if row.dead is None:
                continue
            inactive = row.dead[0].cpu()
            for pos, (li, n) in enumerate(zip(row.dead_layers, row.dead_units)):
                fractions[self.layers[li].name] = float(inactive[pos]) / max(n, 1)
        self._born = born_dead_findings(self, fractions)
        return list(self._born)

    # ------------------------------------------------------------------ reading
    def _data(self):
        from actlab.probe.findings import ProbeData

        key = (len(self._fw_rows), len(self._bw_rows), len(self._up_rows), len(self.layers))
        if self._host is None or self._host_key != key:
            self._host = ProbeData.from_probe(self)
            self._host_key = key
        return self._host

    def records(self) -> list[LayerRecord]:
        """One :class:`LayerRecord` per layer and recorded step, in step then forward order."""
        return list(self._data().records)

    def steps(self) -> list[int]:
        """The recorded steps."""
        return sorted({r.step for r in self._data().records})

    def layer_grad_norms(self, step: int | None = None, *, which: str = "params") -> dict[str, float]:
        """Gradient norm of each layer at ``step`` (default: the last step with gradients).

        Args:
            step: a recorded step; ``None`` takes the last one that had a backward pass.
            which: ``"params"``: norm of the layer's own parameter gradients (all its tensors
                together; parametrised layers); ``"output"``: norm of the loss gradient with
                respect to the layer's output (every observed layer); ``"rms"``: the parameter
                gradient norm over ``sqrt(numel)``.

        Returns:
            ``{layer name: norm}`` in forward (execution) order, the input side first.
        """
        field_ = {"params": "grad_norm", "output": "out_grad_norm", "rms": "grad_rms"}.get(which)
        if field_ is None:
            raise ValueError(f"which must be 'params', 'output' or 'rms', got {which!r}")
        recs = self._data().records
        if step is None:
            have = [r.step for r in recs if not math.isnan(getattr(r, field_))]
            if not have:
                return {}
            step = max(have)
        got = sorted((r for r in recs if r.step == step and not math.isnan(getattr(r, field_))), key=lambda r: r.order)
        if not got and step not in {r.step for r in recs}:
            raise ValueError(f"step {step} was not recorded; recorded steps: {self.steps()[:10]}...")
        return {r.layer: getattr(r, field_) for r in got}

    def param_grad_norms(self, step: int | None = None) -> dict[str, float]:
        """Gradient norm of each parameter tensor at ``step`` (default: the last backward)."""
        return self._data().param_grad_norms(step)

    def findings(self) -> list:
        """The detectors' findings, most severe first (see :mod:`actlab.probe.findings`)."""
        from actlab.probe.findings import detect

        return detect(self)

    def summary(self, *, print_: bool = True, console: Any = None):
        """A rich table of the last recorded step per layer, followed by the findings."""
        from actlab.probe.export import summary

        return summary(self, print_=print_, console=console)

    def to_json(self, path: Any) -> Any:
        """Write settings, layers, records and findings as JSON; returns the path."""
        from actlab.probe.export import to_json

        return to_json(self, path)

    def to_csv(self, path: Any) -> Any:
        """Write the records as CSV (one row per layer and step); returns the path."""
        from actlab.probe.export import to_csv

        return to_csv(self, path)

    def to_tensorboard(self, logdir: Any) -> Any:
        """Write the records as TensorBoard scalars (needs ``tensorboard`` installed)."""
        from actlab.probe.export import to_tensorboard

        return to_tensorboard(self, logdir)

    def plot(self, kind: str, out: Any = None, **kw: Any) -> Any:
        """Save a PNG: ``"grad_norm"``, ``"dead_saturated"``, ``"activations"`` or ``"grad_profile"``."""
        from actlab.probe.plots import plot

        return plot(self, kind, out, **kw)

    def __repr__(self) -> str:
        acts = sum(1 for l in self.layers if l.spec is not None)
        state = "attached" if self._attached else "detached"
        return (f"Probe({type(self.model).__name__}, every={self.every}, window={self.window}, "
                f"saturation={self.saturation:g}; {len(self.layers)} layers, {acts} activations; {state})")

    def iter_layers(self) -> Iterator[ProbeLayer]:
        return iter(sorted(self.layers, key=lambda l: (l.order, l.index)))
