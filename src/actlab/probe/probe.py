"""The probe: hooks on any ``nn.Module`` that record, per layer and on a schedule, what the
activation functions do to training, keeping every statistic on the device until it is read.

:class:`Probe` is the hook scheduler and the record store.  What it measures is declared in
:mod:`actlab.probe.quantities` (one file per quantity: key, schedule, reduction, record fields,
plot); the activation statistics (moments, saturated share, inactive and dead units) are taken in
the fused pass below, which gives the same numbers as the quantities' plain reductions (a test
holds them equal), and ``"generic"`` quantities are run through their reduction on their
schedule.  :meth:`Probe.read` decodes the device rows into typed records
(:mod:`actlab.probe.records`); findings, exports and plots read those and nothing else.

Cost model (why the code looks the way it does).  On the 10-layer MLP benchmark the statistics
kernels and the Python around them, not the hooks, are what costs: ``std_mean`` and boolean
masks with ``count_nonzero`` cost many times a ``sum``, a dot or a per-unit ``amax`` on a CPU
tensor.  So each activation tensor gets one ``sum``, one dot (sum of
squares) and the float-only counts of its :class:`~actlab.probe.stats.StatPlan` (for ReLU-like
activations a single per-unit count gives both the saturated fraction and the dead units),
written into a reused buffer; on the CPU all of that is one numba pass instead
(:mod:`actlab.probe.fused`).  CPU activations are measured at the end of the forward, not in
their hooks: between two layers the matmuls evict the interpreter's code and data from the
caches, and the same statistics cost more there.  There, every layer whose saturation rule is a
count (not the derivative evaluated) goes to one numba call for all of them, by address,
writing their per-unit counts straight into the dead-unit buffers; a Python-level call per layer
(a NumPy view, a kernel dispatch, fresh per-unit tensors, a concatenation) cost about three
times the kernel's own work.  The same holds at the end of backward (the parameter gradients'
squares in one call) and on the update schedule (the update-ratio snapshot and difference).
The small results of a step (0-d tensors, host floats from the fused pass, per-unit vectors) are
copied before the step ends into buffers made for many steps (:class:`_Arena`): kept as small
tensors of their own, they fragmented the heap and the process grew at every step.  The
dead-unit streaks of all layers are updated every 64 recorded steps (or when read) in a handful
of kernels.  Gradients are read once at
the end of backward (a callback queued on the autograd engine by the first output-gradient hook,
so no optimizer hook is needed).  Nothing calls ``.item()``.

Models that call activation functions inside ``forward`` (``F.gelu`` in a transformer block)
are seen through a ``TorchFunctionMode`` active during the root forward of recorded steps only;
it puts a Python call in front of every torch function there, so such models pay more per
recorded step than models built from activation modules.
"""

from __future__ import annotations

import inspect
import itertools
import math
from functools import reduce
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from actlab.activations import get as get_spec
from actlab.activations import spec_for_function, spec_for_module
from actlab.activations.spec import ActivationSpec
from actlab.probe import fused as _fused
from actlab.probe.attribution import match_module
from actlab.probe.findings import Thresholds, born_dead_findings, detect
from actlab.probe.quantities import QUANTITIES, SATURATION_TOL
from actlab.probe.quantities.weight_grad_norm import is_weight
from actlab.probe.quantities.update_ratio import sample as _sample
from actlab.probe.records import Histogram, LayerInfo, LayerRecord, ProbeRecords, Settings
from actlab.probe.stats import TINY, StatPlan, Workspace, plan_for

# Modules whose outputs are channel-first (N, C, ...): their units are channels (dim 1).
_CHANNEL_FIRST = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
)
_NAN = math.nan


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
    role: str = "hidden"  # how the output is used: "hidden", "gate", "attention" or "output" (attribution.roles)
    learnable: bool = False  # the activation has a learnable hyperparameter (PReLU)

    def __post_init__(self) -> None:
        self.learnable = bool(self.spec is not None and self.spec.learnable)

    @property
    def activation(self) -> str:
        return self.spec.name if self.spec is not None else ""


class _Call(NamedTuple):
    """One activation or layer output measured in a forward.  A tuple of plain numbers: the
    collector stops tracking it (ten of them per step, kept for the whole run)."""

    layer: int
    kind: str  # "act" | "param"
    offset: int
    nsat: int = 0
    coefs: tuple = ()
    const: float = 0.0
    n: int = 0
    units: int = 0


# A row's numbers are references into an _Arena's buffer (see _val), not tensors of their own.
@dataclass(slots=True)
class _FwRow:
    step: int
    calls: list[_Call]
    scalars: Any
    dead_layers: list[int]
    dead_units: list[int]
    dead: tuple[Tensor, int] | None  # (block of the flush, row in it); set when flushed


@dataclass(slots=True)
class _BwRow:
    step: int
    params: Any  # indices into Probe._params
    out_layers: list[int]
    p_sq: Any  # squared norms of the parameter gradients (norms until the row is stored), then o_sq's
    o_sq: Any  # sums of squares of the output gradients (None once stored after p_sq's)


@dataclass(slots=True)
class _UpRow:
    step: int
    params: list[int]
    norms: Any  # ||w_after - w_before||^2 then ||w_before||^2 per tensor
    checked: bool = False  # whether a zero update was already told apart from "no optimizer step yet"


@dataclass(slots=True)
class _Acc:
    """One (step, layer)'s sums while the rows are decoded."""

    s: float = 0.0
    q2: float = 0.0
    n: float = 0.0
    sat: float = 0.0
    oq2: float = 0.0
    on: float = 0.0
    act: bool = False
    param: bool = False
    inactive: float = _NAN
    dead: float = _NAN
    g2: float = _NAN
    gnum: float = 0.0
    wg2: float = _NAN
    og2: float = _NAN
    d2: float = _NAN
    w2: float = _NAN
    fin: bool = True
    gfin: bool = True
    extra: dict = field(default_factory=dict)


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
            if torch.compiler.is_compiling():
                # Dynamo must not trace the bookkeeping (tracing its id() of a module raised an
                # internal error in torch 2.13): a graph break runs it eagerly on the real tensors
                _on_function_eager(self.probe, func, spec, args, kwargs, out)
            else:
                self.probe._on_function(func, spec, args, kwargs, out)
        return out


def _on_function_eager(probe: "Probe", *args: Any) -> None:
    global _on_function_eager
    # made once, on the first traced call: torch.compiler.disable imports dynamo, too heavy for
    # every `import actlab`
    _on_function_eager = torch.compiler.disable(_seen_compiling, recursive=True)
    _on_function_eager(probe, *args)


def _seen_compiling(probe: "Probe", *args: Any) -> None:
    probe._traced = True  # a forward of the model ran compiled (it may hold the uncompiled module)
    probe._on_function(*args)


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


def _gate_shaped(spec: ActivationSpec, params: dict) -> bool:
    """Whether ``spec``'s outputs lie in ``[0, b]`` for a finite ``b`` (what a gate needs)."""
    try:
        lo, hi = spec.output_range({**dict(spec.defaults()), **(params or {})})
    except Exception:  # noqa: BLE001 - an odd hyperparameter: not a gate
        return False
    return lo >= 0 and math.isfinite(hi)


def _first_tensor(out: Any) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    if type(out) is tuple and out and isinstance(out[0], Tensor):
        return out[0]  # a forward's positional arguments: tree_flatten's first leaf without its cost
    for t in tree_flatten(out)[0]:
        if isinstance(t, Tensor):
            return t
    return None


def _sq(t: Tensor) -> Tensor:
    """Sum of squares of ``t`` as a 0-d tensor (a BLAS dot: cheaper than a norm on CPU)."""
    if t.is_sparse:
        t = t.coalesce().values()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    if t.is_contiguous():
        u = t.view(-1)
        return torch.dot(u, u)
    return torch.linalg.vector_norm(t).square()


def _norm_list(ts: list[Tensor]) -> list[Tensor]:
    """Norms of many tensors (one ``_foreach_norm`` call when they share dtype and device)."""
    if not ts:
        return []
    if not any(t.is_sparse for t in ts) and len({(t.dtype, t.device) for t in ts}) == 1:
        return list(torch._foreach_norm(ts))
    return [torch.linalg.vector_norm(t.coalesce().values() if t.is_sparse else t) for t in ts]


def _running_max(a: Tensor) -> Tensor:
    """``torch.cummax(a, 0).values`` of a fresh tensor, in place, by log2(len) doubling steps.

    (torch's cummax along dim 0 of a block of steps x units ran slower on the CPU.)
    """
    k = 1
    while k < a.shape[0]:
        a[k:] = torch.maximum(a[k:], a[:-k])  # the right side is computed first: no aliasing
        k *= 2
    return a


#: Forwards an update-ratio snapshot waits for its parameters to move (an optimizer step) before
#: an update of 0 is recorded (a run with no optimizer step, or a learning rate of 0).
_UPDATE_WAIT = 64


class _Arena:
    """Flat buffers that each step's small results are copied into before the step ends.

    Why: kept as their own tensors (0-d norms, sums, per-unit vectors) until the flush, or as one
    view per record after it, the probe's results were thousands of small heap blocks living
    between the model's large short-lived ones.  glibc then carved them out of the large freed
    blocks and had to grow the heap for the next step's activations: on the MLP benchmark the
    process grew ~0.8 MB per step, with ~200 page faults per step in backward.  Here a step's
    results go into one slice of a buffer made for many steps, the temporaries die within the
    step, and a record keeps ``(buffer, start, stop)``: plain Python, no tensor of its own.
    """

    __slots__ = ("buf", "np", "used", "steps")

    def __init__(self, steps: int = 64) -> None:
        self.buf: Tensor | None = None
        self.np: Any = None
        self.used = 0
        self.steps = steps  # a new buffer holds this many steps of the size that asked for it

    def _room(self, n: int, dtype: torch.dtype, device: torch.device) -> int:
        buf = self.buf
        if buf is None or buf.dtype != dtype or buf.device != device or self.used + n > buf.numel():
            self.buf = buf = torch.empty(max(n * self.steps, 64), dtype=dtype, device=device)
            # a NumPy view for the host-float path (float64 only: NumPy has no bfloat16)
            self.np = buf.numpy() if device.type == "cpu" and dtype == torch.float64 else None
            self.used = 0
        a = self.used
        self.used = a + n
        return a

    def reserve(self, n: int) -> tuple[tuple, Any]:
        """``n`` float64 CPU slots: the reference ``(buffer, start, stop)`` and a NumPy view to fill."""
        a = self._room(n, torch.float64, _CPU)
        return (self.buf, a, a + n), self.np[a:a + n]

    def put(self, items: list, square: int = 0) -> Any:
        """Copy ``items`` (0-d tensors of one dtype, or host floats) into the buffer, the first
        ``square`` of them squared in their dtype (in float64 on the CPU); returns the reference
        ``(buffer, start, stop)``, or a tensor of its own where they do not share a dtype and
        device (stacked with the usual promotion), or ``None`` for no items."""
        if not items:
            return None
        t0 = items[0]
        if not isinstance(t0, Tensor):
            if not any(isinstance(t, Tensor) for t in items):  # host floats (the fused CPU pass)
                a = self._room(len(items), torch.float64, _CPU)
                self.np[a:a + len(items)] = items
                if square:
                    self.buf[a:a + square].square_()  # type: ignore[index]
                return (self.buf, a, a + len(items))
            return _stacked(items, square)
        dt, dev = t0.dtype, t0.device
        for t in items:
            if not isinstance(t, Tensor) or t.dtype != dt or t.device != dev or t.dim():
                return _stacked(items, square)
        if dev.type == "cpu" and dt.is_floating_point and not torch.compiler.is_compiling():
            # on the CPU reading 0-d tensors costs no sync, and copying their values into the
            # float64 buffer is cheaper than a stack (squares in float64 do not overflow)
            return self.put([t.item() for t in items], square)
        a = self._room(len(items), dt, dev)
        out = torch.stack(items, out=self.buf[a:a + len(items)])  # type: ignore[index]
        if square:
            out[:square].square_()
        return (self.buf, a, a + len(items))


def _val(ref: Any) -> Tensor | None:
    """The tensor behind a record's reference (see :class:`_Arena`); a view made when read."""
    if type(ref) is tuple:
        buf, a, b = ref
        return buf[a:b]
    return ref


def _stacked(items: list, square: int) -> Tensor:
    """One tensor of mixed items (host floats as float64; stack promotes the dtypes)."""
    flat = torch.stack([t if isinstance(t, Tensor) else torch.tensor(t, dtype=torch.float64) for t in items])
    if square:
        flat[:square].square_()
    return flat


_CPU = torch.device("cpu")
_FLOAT = (torch.float32, torch.float64)


def _sigma_w2(module: nn.Module | None) -> float:
    """``fan_in * mean(W^2)`` of a module's weight matrix or kernel (NaN: none)."""
    w = getattr(module, "weight", None)
    if not isinstance(w, Tensor) or w.dim() < 2 or w.numel() == 0:
        return math.nan
    return float(w.detach().double().square().mean()) * w[0].numel()


# torch's activation modules that are not elementwise hidden-layer activations: not reported as unjudged
_NOT_ACTIVATIONS = (nn.MultiheadAttention, nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d)


def _torch_activation(module: nn.Module) -> bool:
    """Whether ``module`` is one of torch's activation modules (``nn.Hardswish``, ``nn.GLU``, ...);
    one the catalog has no entry for is not judged, and the probe says so."""
    return type(module).__module__ == nn.ReLU.__module__ and not isinstance(module, _NOT_ACTIVATIONS)


def _is_compiled(model: nn.Module) -> bool:
    return type(model).__name__ == "OptimizedModule" or getattr(model, "_compiled_call_impl", None) is not None


_TORCH_DIR = str(__import__("pathlib").Path(torch.__file__).parent)
_PROBE_FILE = __file__


def _call_site() -> tuple[Any, int]:
    """(code, bytecode offset) of the call of the module now running: the first frame up the stack
    outside torch and this file.  Three calls on one line are three sites; a call in a loop is one."""
    import sys

    f = sys._getframe(2)
    while f is not None and (f.f_code.co_filename.startswith(_TORCH_DIR) or f.f_code.co_filename == _PROBE_FILE):
        f = f.f_back
    return (f.f_code, f.f_lasti) if f is not None else (None, 0)


def _forget_compiled_code() -> None:
    """Drop torch.compile's caches if anything was compiled, so code compiled before the probe was
    attached re-traces with its hooks on the next call (else it runs without them: 0 steps seen).

    A compiled model (``Probe(torch.compile(m))``, or ``m`` compiled before or after attaching)
    is then probed like an eager one, at the cost of one recompilation.
    """
    import sys

    dynamo = sys.modules.get("torch._dynamo")
    if dynamo is None:
        return
    from torch._dynamo.utils import counters

    if counters["frames"]["ok"]:
        dynamo.reset()


class NonFiniteError(FloatingPointError):
    """Raised by a probe made with ``on_nonfinite="raise"`` at the first NaN/Inf it records."""


class Probe:
    """Watch a model train: gradient norms, activation statistics, saturation judged by each
    layer's own activation, dead units, update ratios and the first NaN, with findings and advice.

    Attach it to any ``nn.Module`` without changing the model's code; a compiled one
    (``torch.compile``) too: attaching drops torch.compile's caches so that the next compiled call
    re-traces with the probe's hooks.  A step is counted at each
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
            the layer's own activation from the catalog (the one rule of
            :mod:`actlab.probe.quantities.saturated`). Default: ``SATURATION_TOL`` (0.05).
        update_every: measure the update-to-weight ratio on steps where
            ``step % update_every == 0`` (rounded up to a multiple of ``every``), on a strided
            sample of at most 4096 entries per parameter tensor (exact for smaller tensors).
            Default: ``10``.
        out_grads_every: record the norm of the loss gradient with respect to each layer's
            output on steps where ``step % out_grads_every == 0`` (rounded up to a multiple of
            ``every``).  It takes a backward hook per layer (a prehook on the node that made the
            output, reducing the gradient to one BLAS dot at once); pass a larger value to save
            that on a model where it matters.  Parameter-gradient norms are recorded on every
            recorded step regardless. Default: ``1`` (every recorded step).
        auto_step: count a step at each training-mode forward of the root module. Pass
            ``False`` (and call :meth:`step` once per iteration) when an iteration runs several
            forwards, as gradient accumulation does; the first :meth:`step` call also turns it
            off. Default: ``True``.
        param_outputs: also record the output RMS and output-gradient norm of parametrised
            layers (Linear, Conv...), not only of activations; a few percent more step time
            (``benchmarks/probe_overhead.py``). Default: ``False``.
        thresholds: detector thresholds (:class:`~actlab.probe.findings.Thresholds`).
        quantities: keys of the ``"generic"`` quantities to measure
            (:mod:`actlab.probe.quantities`; the fused activation statistics and the gradient
            norms are always measured). ``None``: those on by default (all but ``"histogram"``,
            which :meth:`enable` or naming it here turns on). Default: ``None``.
        fused: take each CPU activation's statistics in one numba pass
            (:mod:`actlab.probe.fused`) instead of three or four torch kernels. ``None`` uses it
            where it can run (numba installed, float32/float64 CPU tensors); ``True`` also
            raises if numba is missing; ``False`` keeps the torch kernels. The numbers are the
            same either way. Default: ``None``.
        on_nonfinite: ``"record"``: a NaN/Inf is recorded and reported by :meth:`findings`;
            ``"raise"``: raise :class:`NonFiniteError` naming the layer, step and pass at the end
            of the first recorded forward or backward that had one (it reads the statistics on
            the host every recorded step, a sync the default avoids). Default: ``"record"``.

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
        saturation: float = SATURATION_TOL,
        update_every: int = 10,
        out_grads_every: int = 1,
        param_outputs: bool = False,
        auto_step: bool = True,
        thresholds: Any = None,
        fused: bool | None = None,
        quantities: tuple[str, ...] | list[str] | None = None,
        on_nonfinite: str = "record",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"Probe needs a torch.nn.Module, got {type(model).__name__}")
        for name, v in (("every", every), ("window", window), ("update_every", update_every),
                        ("out_grads_every", out_grads_every)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                what = {"every": "record every k steps", "window": "steps over which a unit must stay dead",
                        "update_every": "measure update ratios every k steps",
                        "out_grads_every": "measure output-gradient norms every k steps"}[name]
                raise ValueError(f"{name} must be a positive integer ({what}), got {v!r}")
        if not isinstance(saturation, (int, float)) or not 0 < saturation < 1:
            raise ValueError(f"saturation must be a fraction of max|f'| in (0, 1), got {saturation!r}")
        self.model = model
        self.every = every
        self.window = window
        self.saturation = float(saturation)
        self.update_every = -(-update_every // every) * every
        self.out_grads_every = -(-out_grads_every // every) * every
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.param_outputs = bool(param_outputs)
        if fused not in (None, True, False):
            raise ValueError(f"fused must be None (where it can run), True or False, got {fused!r}")
        if fused is True and not _fused.available():
            raise ValueError("fused=True needs numba (pip install numba) and ACTLAB_FUSED not set to 0; "
                             "pass fused=None to fall back to torch kernels where it is missing")
        self._fused = fused is not False
        self._fused_cpu = False  # the numba loops for CPU tensors (decided when attached)
        if on_nonfinite not in ("record", "raise"):
            raise ValueError(f"on_nonfinite must be 'record' or 'raise', got {on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self._periods = {"step": every, "out_grads": self.out_grads_every, "update": self.update_every, "window": every}
        self._generic: list = []
        self._pre_generic: list = []
        self._pre_due: tuple = ()  # the pre-activation quantities due on the step being recorded
        self._pre_results: dict[tuple[str, int], tuple[int, Any]] = {}  # (key, layer) -> (step, latest value)
        self._choose_quantities(quantities)
        self._window_records = -(-window // every)

        self.layers: list[ProbeLayer] = []
        self._by_module: dict[int, ProbeLayer] = {}
        self._modules: dict[int, tuple[str, nn.Module]] = {}
        self._module_of: dict[int, nn.Module] = {}  # layer index -> module
        self._act_ids: set[int] = set()
        self._params: list[tuple[int, str, nn.Parameter]] = []
        self._uncatalogued: list[str] = []  # torch activation modules the catalog has no entry for
        self._calls_first: dict[int, int] = {}  # calls per activation row in the first recorded forward
        self._looped: dict[str, int] = {}  # rows called more than once per forward (a cell in a loop)
        self._discover()

        self._handles: list[Any] = []
        self._attached = False
        self._step = -1 if auto_step else 0
        self._manual_steps = 0
        self._auto = bool(auto_step)
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
        self._param_handles: list[Any] = []
        # per-forward buffers
        self._scalars: list[Tensor] = []
        self._calls: list[_Call] = []
        self._units: dict[int, list] = {}
        self._pend: list[tuple] = []  # activation outputs whose statistics wait for the end of the forward
        self._immediate: set[int] = set()  # layers whose outputs were modified in place: not deferred
        self._out_grads: list[tuple[int, Tensor]] = []
        # results (device)
        self._fw_rows: list[_FwRow] = []
        self._bw_rows: list[_BwRow] = []
        self._up_rows: list[_UpRow] = []
        self._update_waits = 0  # forwards the pending update snapshot has waited for an optimizer step
        self._snapshot: tuple[int, list[Tensor]] | None = None
        self._streak: Tensor | None = None
        self._pending: list[_FwRow] = []  # rows whose per-unit vectors wait in _ubufs for the flush
        self._ubufs: list[list] | None = None  # per plan group: [amax or counts, amin] blocks, K x units
        self._lane_layout: tuple | None = None  # (key, layout) of the last _run_lane call
        self._units_written = False  # this step's per-unit results are in _ubufs already (_run_lane)
        self._pad: Tensor | None = None
        self._fit_seen: tuple | None = None  # (buffers, signature of the vectors last found to fit them)
        self._ar_fw, self._ar_bw, self._ar_up = _Arena(), _Arena(), _Arena()
        self._ar_in, self._ar_gen = _Arena(), _Arena()
        self._snap_bufs: list[Tensor] | None = None  # reused for the parameters' snapshot
        self._upd_plan: tuple | None = None  # the numba path's sample positions and arrays (_sample_plan)
        self._groups: list[tuple] = []
        self._bw_state: dict = {"queued": False, "step": 0, "out": []}
        self._grad_on = True
        self._out_grad_step = True
        self._hooked = False
        self._ws = Workspace()
        self._flush_every = 64
        self._layout: tuple = ()
        self._seg: Tensor | None = None
        self._seg_equal = False
        self._offsets: dict[int, tuple[int, int]] = {}
        self._born: dict[str, float] = {}
        self._generic_rows: list[tuple[int, list, Any]] = []  # (step, [(layer, field)], their values)
        self._in_born = False
        self._driven = False
        self._traced = False  # an activation function was seen while torch.compile traced the model
        self._host: Any = None
        self._host_key: tuple = ()
        # what the findings need beyond the layer rows: the model's input on recorded steps
        # (step, [sum, sum of squares], count), losses given to step(), and the
        # forwards the probe could not see (eval mode)
        self._inputs: list[tuple[int, Any, int]] = []
        self._losses: list[tuple[int, Any]] = []
        self._eval_forwards = 0
        self._train_forwards = 0
        self._init_sq: list[tuple[int, Tensor]] | None = None  # sigma_w^2 per chain layer at the first record
        self._calls_of: dict[int, dict] = {}  # call sites (code, offset) of each activation module, in order
        self._sites: dict[tuple[int, int], ProbeLayer] = {}  # (module, k): the k-th call site's layer
        self._multi_site: set[int] = set()  # modules called from several sites in the first recorded forward
        self._role_nodes: dict[int, Any] | None = {}  # grad_fn of each activation output, until roles are read

    # ------------------------------------------------------------------ generic quantities
    def _choose_quantities(self, keys: Any) -> None:
        """Set the ``"generic"`` quantities measured (``None``: those measured by default)."""
        generic = {q.key: q for q in QUANTITIES if q.probe == "generic"}
        if keys is None:
            keys = tuple(k for k, q in generic.items() if q.default)
        bad = [k for k in keys if k not in generic]
        if bad:
            raise ValueError(f"unknown quantity {bad[0]!r}; the generic quantities are: {', '.join(generic) or 'none'}")
        chosen = [generic[k] for k in dict.fromkeys(keys)]
        for q in chosen:
            if q.target not in ("parameters", "pre_activation"):  # the targets the generic path reads today
                raise ValueError(f"quantity {q.key!r} reads {q.target!r}; the probe runs generic quantities "
                                 "on layer parameters and pre-activations only")
        self._generic = [q for q in chosen if q.target == "parameters"]
        self._pre_generic = [q for q in chosen if q.target == "pre_activation"]
        # steps where some generic quantity is due: a multiple of this (one test per recorded step)
        self._generic_every = math.gcd(*(self._periods[q.schedule] for q in self._generic)) if self._generic else 0

    def enable(self, *keys: str) -> "Probe":
        """Also measure these ``"generic"`` quantities (:mod:`actlab.probe.quantities`), from the
        next recorded step on: those off by default, as ``"histogram"``.  Idempotent; returns ``self``.

        Raises:
            ValueError: an unknown key (the message lists the generic quantities).
        """
        self._choose_quantities([q.key for q in self._generic + self._pre_generic] + list(keys))
        return self

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
            found = match_module(m)
            own = [(n, p) for n, p in m.named_parameters(recurse=False) if p.requires_grad]
            layer = None
            if found is not None and found[0].name != "identity":
                spec, params, _ = found
                layer = self._new_layer(name or type(m).__name__, "activation", type(m).__name__, spec, params)
                self._act_ids.add(id(m))
            elif found is None and _torch_activation(m):
                self._uncatalogued.append(f"{name or type(m).__name__} ({type(m).__name__})")
            if layer is None and own:
                layer = self._new_layer(name or type(m).__name__, "parametrised", type(m).__name__)
                layer.chain = not isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and any(p.dim() >= 2 for _, p in own)
            if layer is None:
                continue
            self._by_module[id(m)] = layer
            self._module_of[layer.index] = m
            for n, p in own:
                layer.param_names.append(f"{name}.{n}" if name else n)
                layer.numel += p.numel()
                self._params.append((layer.index, layer.param_names[-1], p))
        self._plist = [p for _, _, p in self._params]
        self._pidx = tuple(range(len(self._plist)))
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
        _forget_compiled_code()
        m = self.model
        # numba loaded only for a model with CPU tensors (about a second on its first use)
        self._fused_cpu = self._fused and any(t.is_cpu for t in itertools.chain(m.parameters(), m.buffers())) \
            and _fused.available()
        self._handles.append(m.register_forward_pre_hook(self._root_pre))
        self._handles.append(m.register_forward_hook(self._root_post, always_call=True))
        self._param_handles = []
        for _, mod in self._modules.values():
            layer = self._by_module.get(id(mod))
            if layer is None:
                continue
            if layer.kind == "activation":
                self._handles.append(mod.register_forward_hook(self._act_hook))
            elif not self._discovered or self._param_hooks_needed():
                h = mod.register_forward_hook(self._param_hook)
                self._handles.append(h)
                self._param_handles.append(h)
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

    def step(self, loss: Any = None) -> int:
        """Advance the step counter by one and stop counting forwards automatically.

        Call it once per iteration, after the optimizer step: the forwards before the first call
        are step 0, those after the k-th call step k.  Returns the new step.

        Args:
            loss: the loss of the step just finished (a tensor or a float), for the loss-trend
                finding (plateau, divergence). It is kept detached on its device; nothing syncs.
        """
        if loss is not None:
            self.record_loss(loss)
        self._auto = False
        self._manual_steps += 1
        self._step = self._manual_steps
        return self._step

    def record_loss(self, loss: Any) -> None:
        """Keep the loss of the current step (for the loss-trend finding) without moving the step
        counter; a tensor is kept detached on its device, nothing syncs."""
        if isinstance(loss, Tensor):
            if loss.numel() != 1:
                raise ValueError(f"loss must be one number (a scalar tensor or a float), got a tensor of shape "
                                 f"{tuple(loss.shape)}")
            self._losses.append((max(self._step, 0), loss.detach()))
            return
        try:
            value = float(loss)
        except (TypeError, ValueError):
            raise ValueError(f"loss must be one number (a scalar tensor or a float), got {type(loss).__name__} "
                             f"{loss!r:.60}") from None
        self._losses.append((max(self._step, 0), value))

    def _is_record_step(self, step: int) -> bool:
        return step >= 0 and step % self.every == 0

    # ------------------------------------------------------------------ forward hooks
    def _root_pre(self, module: nn.Module, args: Any) -> None:
        if self._in_born or self._driven:
            return
        if self._snapshot is not None:
            self._finish_update()
        if not module.training:
            self._eval_forwards += 1
            return
        self._train_forwards += 1
        if self._auto:
            self._step += 1
        step = max(self._step, 0)
        if not self._is_record_step(step):
            return
        self._start_recording(step)
        self._record_input(step, args)
        if self._init_sq is None:
            self._record_init_scale()

    def _record_init_scale(self) -> None:
        """fan_in * mean(W^2) of each layer with a weight matrix at the first recorded step (so a
        zero-initialised layer is called so after training has moved it)."""
        self._init_sq = []
        for mid, layer in self._by_module.items():
            w = getattr(self._modules[mid][1], "weight", None)
            if layer.chain and isinstance(w, Tensor) and w.dim() >= 2 and w.numel():
                self._init_sq.append((layer.index, _sq(w.detach()) * (w[0].numel() / w.numel())))

    def _record_input(self, step: int, args: Any) -> None:
        """Sum and sum of squares of the model's first floating-point input (what layer 1 receives)."""
        x = _first_tensor(args)
        if x is None or not x.is_floating_point() or x.numel() == 0:
            return
        v = x.detach()
        if self._fused and _fused.sums_usable(v):
            ref = self._ar_in.put(list(_fused.sums(v)))
        else:
            ref = self._ar_in.put([v.sum(), _sq(v)])
        self._inputs.append((step, ref, v.numel()))

    def _start_recording(self, step: int) -> None:
        if self._generic_every and step % self._generic_every == 0 and not self._in_born:
            self._measure_generic(step)
        self._pre_due = tuple(q for q in self._pre_generic if step % self._periods[q.schedule] == 0) \
            if self._pre_generic and not self._in_born else ()
        self._recording = True
        self._rec_step = step
        self._scalars, self._calls, self._units = [], [], {}
        self._pend = []
        self._units_written = False
        self._out_grads = []
        self._bw_state = {"queued": False, "step": step, "out": self._out_grads}
        self._grad_on = torch.is_grad_enabled()
        self._out_grad_step = step % self.out_grads_every == 0
        self._hooked = False
        self._stack = []
        self._fcount = {}
        self._last_channel_first = False
        if not self._discovered:
            self._begin_discovery()
            self._enter_mode()
        elif self._callers:
            self._enter_mode()

    def _measure_generic(self, step: int) -> None:
        """The generic quantities due at ``step`` (on the parameters as the step begins)."""
        grad_mode = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        keys: list[tuple[int, str]] = []
        vals: list[Any] = []
        try:
            for q in self._generic:
                if step % self._periods[q.schedule] or q.target != "parameters":
                    continue
                for li, m in self._module_of.items():
                    w = getattr(m, "weight", None)
                    if self.layers[li].chain and isinstance(w, Tensor):
                        b = getattr(m, "bias", None)
                        v = q.reduce(w, b if isinstance(b, Tensor) else None)
                        if v is not None:
                            keys.append((li, q.fields[0].name))
                            vals.append(v)
        finally:
            torch._C._set_grad_enabled(grad_mode)
        if keys:
            self._generic_rows.append((step, keys, self._ar_gen.put(vals)))

    def _root_post(self, module: nn.Module, args: Any, output: Any, _explicit: bool = False) -> None:
        if not self._recording or (self._driven and not _explicit):
            return
        if self._mode_on:
            self._exit_mode()
        if not self._discovered:
            self._end_discovery()
        self._recording = False
        if output is None:  # the forward raised
            self._role_nodes = {} if self._role_nodes is not None else None
            return
        if self._role_nodes:
            # once, on the first recorded forward with a graph: gates and attention weights are not
            # judged as hidden-layer activations
            from actlab.probe.attribution import roles

            for li, role in roles(output, self._role_nodes).items():
                spec = self.layers[li].spec
                # a gate opens and closes: its output lies between 0 and a bound (sigmoid, hard
                # sigmoid).  Multiplied in, tanh(c) in an LSTM is a signal, and SiLU/GELU in a
                # gated FFN (SwiGLU, GeGLU) are the block's hidden activation.
                if role != "gate" or (spec is not None and _gate_shaped(spec, self.layers[li].params)):
                    self.layers[li].role = role
            self._role_nodes = None
        self._finish_forward(output)

    # driven by a training framework (see actlab.probe.lightning) instead of the root forward
    def _drive_begin(self, step: int) -> None:
        self._driven = True
        if self._snapshot is not None:
            self._finish_update()
        self._step = step
        if self.model.training and self._is_record_step(step):
            self._start_recording(step)

    def _drive_end(self, output: Any) -> None:
        if self._recording:
            self._root_post(self.model, (), output, _explicit=True)

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
        self._multi_site = {mid for mid, sites in self._calls_of.items() if len(sites) > 1}
        self._looped = {self.layers[i].name: n for i, n in self._calls_first.items() if n > 1}
        self._install_caller_hooks()
        if not self._param_hooks_needed():
            # their only other job, the execution order, is done: a module without hooks runs faster
            for h in self._param_handles:
                h.remove()
            self._param_handles = []

    def _param_hooks_needed(self) -> bool:
        """Parametrised-layer hooks matter for their outputs, or to tell channel-first outputs."""
        return self.param_outputs or any(isinstance(m, _CHANNEL_FIRST) for _, m in self._modules.values())

    def _install_caller_hooks(self) -> None:
        for h in self._caller_handles:
            h.remove()
        self._caller_handles = []
        if not self._callers:
            return
        # The mode is on for the whole forward: the callers and every activation module (whose
        # own torch.relu... must not count twice) say who is running.
        watch: dict[int, nn.Module] = {cid: c for cid, c in self._callers.items() if c is not self.model}
        for i in self._act_ids:
            watch[i] = self._modules[i][1]
        for mod in watch.values():
            self._caller_handles.append(mod.register_forward_pre_hook(self._push))
            self._caller_handles.append(mod.register_forward_hook(self._pop, always_call=True))

    def _push(self, module: nn.Module, args: Any) -> None:
        if self._recording:
            self._stack.append(module)
            if self._fcount:
                for k in [k for k in self._fcount if k[0] == id(module)]:
                    del self._fcount[k]

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
        ck = (id(current), spec.name)
        k = self._fcount.get(ck, 0)
        self._fcount[ck] = k + 1
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
        if not self._recording or type(output) is not Tensor and not isinstance(output, Tensor):
            return
        layer = self._by_module[id(module)]
        # one module called at several places (one nn.ReLU reused) is one row per call site:
        # merged, a dead layer hides among live ones
        # (a call site is a place in the code: a module called in a loop, an RNN cell's, stays one row)
        # (while dynamo traces, frames are not the user's: one row per module there)
        # After the first recorded forward only the modules seen at several sites pay for the frame walk.
        if torch.compiler.is_compiling() or (self._discovered and id(module) not in self._multi_site):
            k = 0
        else:
            sites = self._calls_of.setdefault(id(module), {})
            k = sites.setdefault(_call_site(), len(sites))
        if k:
            site = self._sites.get((id(module), k))
            if site is None:
                site = self._new_layer(f"{layer.name}#{k}", "activation", layer.module, layer.spec, layer.params)
                self._sites[(id(module), k)] = site
                self._plans[site.index] = self._plans[layer.index]
            layer = site
        if layer.learnable:
            plan = self._plan(layer.spec, spec_for_module(module)[1])  # type: ignore[arg-type]
        else:
            plan = self._plans[layer.index]
        self._act_call(layer, plan, args[0] if args else None, output)

    def _param_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._recording:
            return
        layer = self._by_module[id(module)]
        self._see(layer)
        self._last_channel_first = isinstance(module, _CHANNEL_FIRST)
        if not self.param_outputs:
            return
        y = _first_tensor(output)
        if y is None or not y.is_floating_point() or y.numel() == 0:
            return
        v = y.detach()
        self._calls.append(_Call(layer.index, "param", len(self._scalars), n=y.numel()))
        self._scalars.extend([v.sum(), _sq(v)])
        if y.requires_grad:
            self._grad_hook(layer.index, y)

    def _grad_hook(self, index: int, y: Tensor) -> None:
        if not self._out_grad_step:
            return
        node = y.grad_fn
        if node is None or not self._grad_on:
            return
        out_grads, state, nr = self._out_grads, self._bw_state, y.output_nr
        self._hooked = True

        # Reduce at once: holding the gradient until the end of backward would keep its buffer
        # from being reused, which shows in the step time.  A prehook on the
        # node that made y sees dL/dy, as a tensor hook would, at half the set-up cost; the
        # first one to run in backward queues the end-of-backward reading of the gradients.
        dot, fast = torch.dot, y.dtype in (torch.float32, torch.float64)
        # on the CPU one numba loop (a host float), else one BLAS dot (a 0-d tensor)
        sq = _fused.sumsq if fast and self._fused_cpu and y.is_cpu and not torch.compiler.is_compiling() else None

        def hook(grad_outputs: tuple) -> None:
            if not state["queued"]:
                self._queue(state)
            g = grad_outputs[nr]
            if g is None:
                return
            if fast and g.is_contiguous() and not g.requires_grad:  # the common case: no other checks
                if sq is not None:
                    out_grads.append((index, sq(g)))
                else:
                    u = g.view(-1)
                    out_grads.append((index, dot(u, u)))
            else:
                out_grads.append((index, _sq(g.detach())))

        node.register_prehook(hook)

    def _unit_dim(self, v: Tensor) -> int:
        if v.dim() >= 4 or (v.dim() == 3 and self._last_channel_first):
            return 1
        return -1

    def _act_call(self, layer: ProbeLayer, plan: StatPlan | None, x: Any, y: Tensor) -> None:
        if layer.order == 1 << 30:
            self._see(layer)
        if not self._discovered:
            self._calls_first[layer.index] = self._calls_first.get(layer.index, 0) + 1
        if self._role_nodes is not None and y.grad_fn is not None:
            # the last call of a cell run in a loop: at the first step its state is a constant (zeros)
            self._role_nodes[layer.index] = y.grad_fn
        if plan is None or y.numel() == 0 or not y.is_floating_point():
            return
        if y.device.type == "cpu" and y.requires_grad and layer.index not in self._immediate:
            # Later, in one loop at the end of the forward (_run_deferred).  Between two layers the
            # big matmuls evict the interpreter's code and data from the caches, so every line
            # run here costs several times what it costs in a loop that runs them back to back.
            # The output of a layer that needs a gradient is saved for
            # backward in the usual cases (by the activation or by the next layer), so keeping it
            # until the end of the forward costs no memory there; on CUDA, where memory is
            # scarcer and kernels run asynchronously, the work stays here.
            if not plan.needs_input and not self._pre_due:
                x = None  # not kept alive for nothing
            self._pend.append((layer, plan, x, y, self._last_channel_first, y._version,
                               x._version if isinstance(x, Tensor) else 0))
            return
        self._act_now(layer, plan, x, y, self._last_channel_first)

    def _run_deferred(self) -> None:
        pend, self._pend = self._pend, []
        lane = self._fused_cpu and not self._pre_due and not torch.compiler.is_compiling()
        kept = []
        for entry in pend:
            layer, plan, x, y, channel_first, version, x_version = entry
            if y._version != version or (isinstance(x, Tensor) and x._version != x_version):
                # modified in place after the activation (an in-place op downstream): this step's
                # numbers for the layer are gone; take them at once from now on
                self._immediate.add(layer.index)
                continue
            if lane:
                kept.append(entry)
            else:
                self._act_now(layer, plan, x, y, channel_first)
        if kept:
            self._run_lane(kept)

    def _run_lane(self, pend: list) -> None:
        """The deferred statistics of many layers in one numba call (:func:`fused.act_stats_many`):
        between two layers' statistics, a Python-level call each (a NumPy view, a kernel
        dispatch, fresh per-unit tensors) cost about three times the kernel's own time.  Layers
        it does not take (a saturation rule that evaluates the derivative, a layer called twice in
        the forward, a non-contiguous tensor) go through :meth:`_act_now`, with the same numbers.
        The layout of the call is kept while the layers, plans, shapes and dtypes stay the same."""
        # plans by identity (the layout keeps them alive): a plan made per call (a slope passed as
        # a tensor) gives a new layout each step, never a comparison of its tensors
        key = tuple((e[0].index, id(e[1]), e[3].shape, e[3].dtype, e[4]) for e in pend)
        lay = self._lane_layout
        if lay is None or lay[0] != key:
            lay = self._lane_layout = (key, *self._lane_plan(pend), [e[1] for e in pend])
        _, take, arrays, sizes, calls, _, _ = lay
        rest = [e for e, t in zip(pend, take) if not t]
        lane = [e for e, t in zip(pend, take) if t] if rest else pend
        if lane:
            xin = arrays["xin"]
            if not all(e[3].is_contiguous() for e in lane) or (arrays["any_x"] and not all(
                    isinstance(e[2], Tensor) and e[2].is_contiguous() and e[2].dtype is e[3].dtype
                    and e[2].shape == e[3].shape for e, f in zip(lane, xin) if f)):
                rest, lane = pend, []
        for layer, plan, x, y, channel_first, _, _ in rest:
            self._act_now(layer, plan, x, y, channel_first)
        if not lane:
            return
        A = arrays
        addrs = np.fromiter((e[3].data_ptr() for e in lane), np.int64, len(lane))
        xaddrs = np.fromiter((e[2].data_ptr() if f else 0 for e, f in zip(lane, xin)), np.int64, len(lane)) \
            if A["any_x"] else A["no_x"]
        sums = A["sums"]
        direct = self._direct_rows(lay) if not rest and not self._units else None
        if direct is not None:
            # straight into this step's row of the dead-unit buffers (see _dead_update)
            k = len(self._pending)
            (a_at, a_row), (b_at, b_row) = direct
            ua, ub = a_at + a_row * k, b_at + b_row * k
        else:
            dt = lane[0][3].dtype
            ta = torch.empty(max(sizes[0], 1), dtype=dt)
            tb = torch.empty(max(sizes[1], 1), dtype=dt)
            ua, ub = A["a_off"] + ta.data_ptr(), A["b_off"] + tb.data_ptr()
        _fused.act_stats_many(addrs, xaddrs, A["P"], A["U"], A["Q"], A["modes"], A["lo"], A["hi"], sums, A["so"],
                              ua, ub, A["table"])
        scalars = self._scalars
        base = len(scalars)
        scalars.extend(sums.tolist())
        if calls[0] != base:
            calls[0] = base
            calls[1] = [c._replace(offset=base + int(o)) for c, o in zip(calls[1], A["so"])]
        self._calls.extend(calls[1])
        if direct is not None:
            self._units_written = True
            if self._out_grad_step:
                for layer, _, _, y, _, _, _ in lane:
                    if y.requires_grad:
                        self._grad_hook(layer.index, y)
            return
        units = A["units"]
        va = ta.split(units[0]) if sizes[0] else None
        vb = tb.split(units[1]) if sizes[1] else None
        unit_rows = self._units
        for i, (layer, plan, x, y, _, _, _) in enumerate(lane):
            if units[2][i]:
                unit_rows[layer.index] = [plan, va[units[3][i]] if units[3][i] >= 0 else None,
                                          vb[units[4][i]] if units[4][i] >= 0 else None]
            if self._out_grad_step and y.requires_grad:
                self._grad_hook(layer.index, y)

    def _lane_plan(self, pend: list) -> tuple:
        """Which deferred layers :meth:`_run_lane` takes in its call, and the call's fixed arrays."""
        counts: dict[int, int] = {}
        for e in pend:
            counts[e[0].index] = counts.get(e[0].index, 0) + 1
        take = []
        dt = None
        for layer, plan, x, y, channel_first, _, _ in pend:
            ok = (y.dtype in _FLOAT and (dt is None or y.dtype is dt) and y.dim() >= 1 and _fused.lane_usable(plan)
                  and counts[layer.index] == 1 and layer.index not in self._units)
            if ok and self._lane_runs(plan) and plan.domain == "input":  # the runs count on the input
                ok = isinstance(x, Tensor) and x.dtype is y.dtype and x.shape == y.shape
            if ok:
                dt = y.dtype
            take.append(ok)
        lane = [e for e, t in zip(pend, take) if t]
        if not lane:
            return take, None, (0, 0), [0, []], {}
        P, U, Q, modes, lo, hi, a_off, b_off, so, xin = [], [], [], [], [], [], [], [], [], []
        tables: list[tuple] = []
        roffs = [0]
        a_sizes: list[int] = []
        b_sizes: list[int] = []
        has, ia, ib = [], [], []
        calls = []
        item = torch.empty((), dtype=dt).element_size()
        offset = 0
        for layer, plan, x, y, channel_first, _, _ in lane:
            n = y.numel()
            nd = y.dim()
            want_units = plan.dead != "none"
            mode, l, h = _fused.lane_consts(plan, y.dtype, want_units)
            if want_units and (nd >= 4 or (nd == 3 and channel_first)):  # units along dim 1 (channels)
                p_, u_ = y.shape[0], y.shape[1]
                q_ = n // max(p_ * u_, 1)
            else:
                p_, u_ = (n // y.shape[-1], y.shape[-1]) if want_units else (1, n)
                q_ = 0
            P.append(p_)
            U.append(u_)
            Q.append(q_)
            modes.append(mode)
            lo.append(l)
            hi.append(h)
            takes_a = mode in (_fused.U_COUNT, _fused.U_MAX, _fused.U_BOTH)
            takes_b = mode in (_fused.U_MIN, _fused.U_BOTH)
            a_off.append(sum(a_sizes) * item)
            b_off.append(sum(b_sizes) * item)
            ia.append(len(a_sizes) if takes_a else -1)
            ib.append(len(b_sizes) if takes_b else -1)
            if takes_a:
                a_sizes.append(u_)
            if takes_b:
                b_sizes.append(u_)
            has.append(want_units)
            # as _act_stats: the saturated count is a scalar of its own, or n minus the unit counts,
            # or all or none of the entries
            runs = self._lane_runs(plan)
            if runs:
                tables.append(_fused.lane_runs(plan, y.dtype))
                nsat, cs, k = 1, (1.0,), 0.0
            else:
                nsat, cs = 0, ()
                k = float(n) if (plan.unit_counts and plan.counts_saturation) or plan.sat == "always" else 0.0
            roffs.append(roffs[-1] + (len(tables[-1][0]) if runs else 0))
            xin.append(runs and plan.domain == "input")
            so.append(offset)
            calls.append(_Call(layer.index, "act", offset, nsat, cs, k, n, u_ if want_units else y.shape[-1]))
            offset += 2 + nsat
        npdt = _fused._NP[dt]
        cat = (lambda i, t: np.concatenate([tb[i] for tb in tables]).astype(t)) if tables else \
            (lambda i, t: np.zeros(0, t))
        arrays = {"P": np.array(P, np.int64), "U": np.array(U, np.int64), "Q": np.array(Q, np.int64),
                  "modes": np.array(modes, np.int64), "lo": np.array(lo, npdt), "hi": np.array(hi, npdt),
                  "a_off": np.array(a_off, np.int64), "b_off": np.array(b_off, np.int64),
                  "units": (a_sizes, b_sizes, has, ia, ib), "sums": np.empty(offset), "so": np.array(so, np.int64),
                  "xin": xin, "any_x": any(xin), "no_x": np.zeros(len(lane), np.int64),
                  "table": (cat(0, np.int64), cat(1, np.bool_), cat(2, npdt), cat(3, npdt), np.array(roffs, np.int64))}
        return take, arrays, (sum(a_sizes), sum(b_sizes)), [0, calls], {}

    @staticmethod
    def _lane_runs(plan: StatPlan) -> bool:
        """Whether the plan's saturated count is its runs' (a scalar of its own), as in _act_stats."""
        return plan.sat == "runs" and not (plan.unit_counts and plan.counts_saturation)

    def _direct_rows(self, lay: tuple) -> tuple | None:
        """Where :meth:`_run_lane` can write its per-unit results straight into the dead-unit buffers
        (``_ubufs``): per side, ``(address of each layer's slot in row 0, bytes per row)``; ``None``
        where the lane's layers are not laid out there as :meth:`_dead_update` would lay them out.
        Kept per buffers (a flush keeps them, a new layout replaces them)."""
        bufs = self._ubufs
        if bufs is None:
            return None
        memo = lay[5]
        hit = memo.get("at")
        if hit is not None and hit[0] is bufs:
            return hit[1]
        key, take, arrays, sizes, calls, _, _ = lay
        lane = [k for k, t in zip(key, take) if t]
        has = arrays["units"][2]
        # _dead_update's layout: the layers with per-unit statistics grouped by plan, in call order
        groups: dict[int, list[int]] = {}
        for (li, plan_id, *_), h in zip(lane, has):
            if h:
                groups.setdefault(plan_id, []).append(li)
        order = [li for g in groups.values() for li in g]
        units = dict((k[0], arrays["U"][i]) for i, k in enumerate(lane))
        if tuple((li, int(units[li])) for li in order) != self._layout or len(self._groups) != len(groups):
            return None
        at: list[list[int]] = [[0] * len(lane), [0] * len(lane)]
        stride = [0, 0]
        pos = {li: i for i, (li, *_) in enumerate(lane)}
        for (plan, off, n, positions), pair, lis in zip(self._groups, bufs, groups.values()):
            if n != sum(int(units[li]) for li in lis):
                return None
            inner = 0
            for li in lis:
                for side in (0, 1):
                    buf = pair[side]
                    wants = (arrays["units"][3] if side == 0 else arrays["units"][4])[pos[li]] >= 0
                    if wants != (buf is not None):
                        return None
                    if buf is not None:
                        if _fused._NP.get(buf.dtype) != arrays["lo"].dtype:
                            return None
                        if stride[side] and stride[side] != buf.stride(0) * buf.element_size():
                            return None
                        stride[side] = buf.stride(0) * buf.element_size()
                        at[side][pos[li]] = buf.data_ptr() + inner * buf.element_size()
                inner += int(units[li])
        # a side no layer takes still needs valid addresses (the kernel reads none of them)
        out = tuple((np.array(a, np.int64) if any(a) else np.full(len(lane), self._lane_pad(), np.int64), st)
                    for a, st in zip(at, stride))
        memo["at"] = (bufs, out)
        return out

    def _lane_pad(self) -> int:
        """The address of a scratch element for the kernel's unused slots."""
        if self._pad is None:
            self._pad = torch.zeros(2, dtype=torch.float64)
        return self._pad.data_ptr()

    def _act_now(self, layer: ProbeLayer, plan: StatPlan, x: Any, y: Tensor, channel_first: bool) -> None:
        # the statistics must build no autograd graph: switch grad mode off around them (two C
        # calls, cheaper than a detach per tensor or a no_grad context object)
        grad_mode = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            self._act_stats(layer, plan, x, y, y.numel(), channel_first)
            if self._pre_due and isinstance(x, Tensor) and x.is_floating_point():
                for q in self._pre_due:  # the latest value per layer is kept, on the device
                    self._pre_results[(q.key, layer.index)] = (self._rec_step, q.reduce(x))
        finally:
            torch._C._set_grad_enabled(grad_mode)
        if y.requires_grad and self._out_grad_step:
            self._grad_hook(layer.index, y)

    def _act_stats(self, layer: ProbeLayer, plan: StatPlan, x: Any, v: Tensor, n: int,
                   channel_first: bool) -> None:
        nd = v.dim()
        scalars = self._scalars
        offset = len(scalars)
        counted = plan.unit_counts and nd >= 1
        want_units = plan.dead != "none" and nd >= 1
        channel = want_units and (nd >= 4 or (nd == 3 and channel_first))
        if self._fused and _fused.usable(plan, v, x):
            shape = None
            if want_units:
                shape = (v.shape[0], v.shape[1], -1) if channel else (-1, v.shape[-1])
            s, ss, sat, amax, amin = _fused.act_stats(plan, v, x, counted, shape)
            scalars.append(s)
            scalars.append(ss)
            if counted and plan.counts_saturation:  # n minus the per-unit counts, when the steps are flushed
                nsat, cs, k = 0, (), float(n)
            elif sat is None:
                nsat, cs, k = 0, (), (float(n) if plan.sat == "always" else 0.0)
            else:
                scalars.append(sat)
                nsat, cs, k = 1, (1.0,), 0.0
        else:
            scalars.append(v.sum())
            scalars.append(_sq(v))
            if counted and plan.counts_saturation:
                nsat, cs, k = 0, (), float(n)
            else:
                xd = x if (plan.needs_input and isinstance(x, Tensor)) else None
                ts, cs, k = plan.saturated_count(xd, v, self._ws)
                scalars.extend(ts)
                nsat, cs = len(ts), tuple(cs)
            if want_units:
                if channel:
                    dims: Any = tuple(d for d in range(nd) if d != 1)
                    w = v
                else:
                    dims = 0
                    w = v if nd == 2 else v.reshape(-1, v.shape[-1])
                if counted:
                    amax, amin = plan.unit_count(w, dims, self._ws), None
                else:
                    amax = w.amax(dims) if plan.dead != "min" else None
                    amin = w.amin(dims) if plan.dead in ("min", "both") else None
        if want_units:
            ref = amax if amax is not None else amin
            units = ref.numel()
            prev = self._units.get(layer.index)
            if prev is None:
                self._units[layer.index] = [plan, amax, amin]
            elif prev[0] is plan and (prev[1] if prev[1] is not None else prev[2]).shape == ref.shape:
                # the same layer called again in this forward (RNN loop, shared module)
                if counted:
                    prev[1] = prev[1] + amax
                else:
                    if amax is not None:
                        prev[1] = torch.maximum(prev[1], amax)
                    if amin is not None:
                        prev[2] = torch.minimum(prev[2], amin)
            elif counted and plan.counts_saturation:
                k = math.nan  # cannot merge: saturation unknown for this call
        else:
            units = v.shape[-1] if nd else 1
        self._calls.append(_Call(layer.index, "act", offset, nsat, cs, k, n, units))

    # ------------------------------------------------------------------ end of forward
    def _finish_forward(self, output: Any) -> None:
        if self._pend:
            self._run_deferred()
        calls, scalars = self._calls, self._scalars
        self._calls, self._scalars = [], []
        row = _FwRow(self._rec_step, calls, self._ar_fw.put(scalars), [], [], None)
        self._fw_rows.append(row)
        self._dead_update(row)
        self._host = None
        if self.on_nonfinite == "raise":
            self._raise_if_nonfinite_forward(row)
        if self._grad_on and not self._hooked:
            # no activation output hooked on this step: the model output's node starts the reading
            state = self._bw_state

            def start(grad_outputs: tuple) -> None:
                if not state["queued"]:
                    self._queue(state)

            outs = (output,) if isinstance(output, Tensor) else tree_flatten(output)[0]
            for t in outs:
                if isinstance(t, Tensor) and t.grad_fn is not None:
                    t.grad_fn.register_prehook(start)
        if len(self._pending) >= self._flush_every:
            self._flush()

    def _raise_if_nonfinite_forward(self, row: _FwRow) -> None:
        if self._inputs and self._inputs[-1][0] == row.step and not math.isfinite(float(_val(self._inputs[-1][1])[0])):
            raise NonFiniteError(f"non-finite value at step {row.step} in the model's input (forward pass): "
                                 "the batch itself has a NaN or Inf")
        S = _val(row.scalars)
        for c in sorted(row.calls, key=lambda c: self.layers[c.layer].order):
            if not math.isfinite(float(S[c.offset])):  # type: ignore[index]
                raise NonFiniteError(f"non-finite value at step {row.step} in layer {self.layers[c.layer].name} "
                                     "(forward pass, the first such layer in execution order)")

    def _raise_if_nonfinite_backward(self, row: _BwRow) -> None:
        bad = [self._params[pi] for pi, n in zip(row.params, row.p_sq) if not math.isfinite(float(n))]
        bad += [(li, "", None) for li, q in zip(row.out_layers, row.o_sq) if not math.isfinite(float(q))]
        if bad:
            # backward runs from the output: the first non-finite gradient is the one nearest it
            li = max((b[0] for b in bad), key=lambda i: self.layers[i].order)
            raise NonFiniteError(f"non-finite gradient at step {row.step} in layer {self.layers[li].name} "
                                 "(backward pass, the layer nearest the output with one)")

    def _dead_update(self, row: _FwRow) -> None:
        units, self._units = self._units, {}
        if self._units_written:  # by _run_lane, in the current layout: only the row's bookkeeping
            self._units_written = False
            row.dead_layers = [li for li, _ in self._layout]
            row.dead_units = [n for _, n in self._layout]
            self._pending.append(row)
            return
        if not units:
            return
        # One layout for all layers (grouped by plan); the per-unit vectors wait until the flush,
        # which turns K steps of all layers into one matrix and updates the streaks in a few kernels.
        groups: dict[int, list[int]] = {}
        for li, (plan, amax, amin) in units.items():
            groups.setdefault(id(plan), []).append(li)
        order = [li for g in groups.values() for li in g]
        sizes = [(units[li][1] if units[li][1] is not None else units[li][2]).numel() for li in order]
        layout = tuple(zip(order, sizes))
        if layout != self._layout:
            self._flush()
            ref = units[order[0]][1] if units[order[0]][1] is not None else units[order[0]][2]
            self._relayout(layout, ref.device)
            self._groups = []
            off = 0
            for lis in groups.values():
                n = sum(sizes[order.index(li)] for li in lis)
                self._groups.append((units[lis[0]][0], off, n, [order.index(li) for li in lis]))
                off += n
        row.dead_layers, row.dead_units = order, sizes
        # Copied at once into the block's buffers: the per-unit vectors die within the step
        # (kept until the flush, they fragmented the heap: see _Arena).
        vecs = [(units[li][1], units[li][2]) for li in order]
        bufs = self._ubufs
        if bufs is None or not self._fits(bufs, vecs):
            self._flush()
            bufs = self._ubufs = self._unit_buffers(vecs)
        k = len(self._pending)
        for (plan, off, n, positions), pair in zip(self._groups, bufs):
            for side in (0, 1):
                if pair[side] is not None:
                    torch.cat([vecs[p][side] for p in positions], out=pair[side][k])
        self._pending.append(row)

    def _unit_buffers(self, vecs: list) -> list[list]:
        """Per plan group, a ``flush_every x units`` block for each side (amax or counts, amin)
        that the step's per-unit vectors take, in the dtype their concatenation has."""
        out = []
        for plan, off, n, positions in self._groups:
            pair: list = [None, None]
            for side in (0, 1):
                parts = [vecs[p][side] for p in positions]
                if parts[0] is not None:
                    dt = reduce(torch.promote_types, (t.dtype for t in parts))
                    pair[side] = torch.empty(self._flush_every, n, dtype=dt, device=parts[0].device)
            out.append(pair)
        return out

    def _fits(self, bufs: list[list], vecs: list) -> bool:
        """Whether this step's per-unit vectors go into ``bufs`` as their concatenation would be."""
        # the dtypes of every vector and the device of each group's first: the same as at the
        # last check of these buffers on almost every step, which saves the full check below
        sig = tuple(None if t is None else t.dtype for pair in vecs for t in pair) + tuple(
            (vecs[g[3][0]][0] if vecs[g[3][0]][0] is not None else vecs[g[3][0]][1]).device for g in self._groups)
        seen = self._fit_seen
        if seen is not None and seen[0] is bufs and seen[1] == sig:
            return True
        if self._fits_all(bufs, vecs):
            self._fit_seen = (bufs, sig)
            return True
        return False

    def _fits_all(self, bufs: list[list], vecs: list) -> bool:
        for (plan, off, n, positions), pair in zip(self._groups, bufs):
            for side in (0, 1):
                buf = pair[side]
                parts = [vecs[p][side] for p in positions]
                if (buf is None) != (parts[0] is None):
                    return False
                if buf is not None:
                    if any(t.dtype is not buf.dtype for t in parts) and \
                            reduce(torch.promote_types, (t.dtype for t in parts)) != buf.dtype:
                        return False
                    if parts[0].device != buf.device:
                        return False
        return True

    def _flush(self) -> None:
        """Update the dead-unit streaks from the per-unit vectors of the steps since the last flush.

        The streak of a unit after step t is t - (last step it was alive), found with a running
        max over the steps, so K steps cost the same handful of kernels as one.
        """
        pend, self._pending = self._pending, []
        if not pend or self._streak is None or self._ubufs is None:
            return
        K = len(pend)
        masks, vals = [], []
        for (plan, off, n, positions), (hb, lb) in zip(self._groups, self._ubufs):
            A = hb[:K] if hb is not None else None
            B = lb[:K] if lb is not None else None
            masks.append(plan.dead_mask(A, B))
            vals.append(A if plan.counts_saturation else None)
        M = masks[0] if len(masks) == 1 else torch.cat(masks, 1)
        dev = M.device
        # Float arithmetic from here on (exact: step counts stay far below 2^24): on the CPU,
        # bool masks, torch.where over them and bool -> float casts run several times slower
        # than the same work in float32 (bool -> float through uint8 does not).
        D = M.view(torch.uint8).to(torch.float32)
        t = torch.arange(1, K + 1, device=dev, dtype=torch.float32)[:, None]
        last_alive = _running_max(t - t * D)  # the last step each unit was alive; 0: none yet
        fresh = torch.eq(last_alive, 0, out=torch.empty_like(last_alive))
        run = t - last_alive + fresh * self._streak[None, :]  # dead since the block began: add the old streak
        self._streak = run[-1].clone()
        parts = [D, torch.ge(run, float(self._window_records), out=torch.empty_like(run))]
        if any(v is not None for v in vals):
            V = [v if v is not None else torch.zeros(K, g[2], device=dev) for v, g in zip(vals, self._groups)]
            parts.append(V[0] if len(V) == 1 else torch.cat(V, 1))
        X = torch.cat([x if x.dtype == torch.float32 else x.to(torch.float32) for x in parts])
        L = len(self._layout)
        if self._seg_equal:  # every layer has as many units: a plain reshaped sum, exact as index_add_
            C = X.view(X.shape[0], L, -1).sum(2)
        else:
            C = torch.zeros(X.shape[0], L, dtype=torch.float32, device=dev).index_add_(1, self._seg, X)
        C = C.view(len(parts), K, L).transpose(0, 1)
        for j, row in enumerate(pend):
            row.dead = (C, j)

    def _relayout(self, layout: tuple, device: torch.device) -> None:
        total = sum(n for _, n in layout)
        new = torch.zeros(total, dtype=torch.float32, device=device)
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
        self._seg_equal = len({n for _, n in layout}) == 1
        # pending per-unit vectors are K x total floats: keep them to a few MB
        self._flush_every = max(1, min(64, (1 << 20) // max(total, 1)))
        self._ubufs = None

    # ------------------------------------------------------------------ backward
    def _queue(self, state: dict) -> None:
        state["queued"] = True
        torch.autograd.Variable._execution_engine.queue_callback(lambda: self._after_backward(state))

    def _after_backward(self, state: dict) -> None:
        state["queued"] = False  # a second backward through the same graph is read again
        step, out_grads = state["step"], state["out"]
        grads = [p.grad for p in self._plist]
        if any(g is None for g in grads):
            idx = [i for i, g in enumerate(grads) if g is not None]
            grads = [grads[i].detach() for i in idx]
        else:
            idx = self._pidx
            if any(g.requires_grad for g in grads):  # create_graph=True
                grads = [g.detach() for g in grads]
        if grads or out_grads:
            o_sq = [q for _, q in out_grads]
            dt = grads[0].dtype if grads else torch.float32
            if self._fused_cpu and dt in _FLOAT and all(type(q) is float for q in o_sq) and all(
                    g.is_cpu and g.dtype is dt and g.is_contiguous() and not g.is_sparse for g in grads):
                # the usual case on the CPU: one numba call for the parameters' squares, written
                # with the output gradients' (host floats) straight into the record buffer
                ref, view = self._ar_bw.reserve(len(grads) + len(o_sq))
                if grads:
                    _fused.sumsq_many(grads, view[:len(grads)])
                view[len(grads):] = o_sq
                row = _BwRow(step, idx, [li for li, _ in out_grads], view[:len(grads)], o_sq)
                if self.on_nonfinite == "raise":
                    self._raise_if_nonfinite_backward(row)
                row.p_sq = ref
            else:
                try:  # one call for all the gradients (the usual case: one dtype, one device, dense)
                    norms = list(torch._foreach_norm(grads)) if grads else []
                except (RuntimeError, NotImplementedError):
                    norms = _norm_list(grads)
                row = _BwRow(step, idx, [li for li, _ in out_grads], norms, o_sq)
                if self.on_nonfinite == "raise":
                    self._raise_if_nonfinite_backward(row)
                # one copy for both lists (read back as one, parameters first, squared)
                row.p_sq = self._ar_bw.put(norms + o_sq, square=len(norms))
            row.o_sq = None
            out_grads.clear()
            self._bw_rows.append(row)
        if step % self.update_every == 0 and self._params:
            ps = [p for _, _, p in self._params]
            plan = self._sample_plan(ps)
            if plan is not None:  # on the CPU: one numba call into one array
                _fused.take_samples(ps, plan[1], plan[2])
                self._snapshot = (step, plan)
                self._host = None
                return
            samples = [_sample(p) for p in ps]
            bufs = self._snap_bufs
            if bufs is not None and all(b.shape == t.shape and b.dtype == t.dtype and b.device == t.device
                                        for b, t in zip(bufs, samples)) and len(bufs) == len(samples):
                torch._foreach_copy_(bufs, samples)  # the same buffers every time: nothing new kept
            else:
                bufs = self._snap_bufs = [t.clone() for t in samples]
            self._snapshot = (step, bufs)
        self._host = None

    def _sample_plan(self, ps: list[Tensor]) -> tuple | None:
        """``(key, sample positions, snapshot array, scratch)`` for the numba path of the update
        ratio (CPU parameters of one float dtype, contiguous, none empty), else ``None``."""
        if not self._fused_cpu:
            return None
        dt = ps[0].dtype
        if dt not in _FLOAT or not all(p.is_cpu and p.dtype is dt and p.is_contiguous() for p in ps):
            return None
        key = (dt, *[p.numel() for p in ps])
        plan = self._upd_plan
        if plan is None or plan[0] != key:
            if not all(key[1:]):
                return None
            pos = _fused.sample_plan(ps)
            plan = self._upd_plan = (key, pos, np.empty(pos[3], _fused._NP[dt]), np.empty(2 * len(ps)))
        return plan

    def _finish_update(self) -> None:
        step, snaps = self._snapshot  # type: ignore[misc]
        if type(snaps) is tuple:  # taken by the numba path
            ps = [p for _, _, p in self._params]
            if self._sample_plan(ps) is not snaps:  # the parameters changed (dtype, device, sizes)
                self._snapshot = None
                return
            K = len(ps)
            sq = snaps[3]
            _fused.moved(ps, snaps[1], snaps[2], sq)
            if self._update_waits < _UPDATE_WAIT and not sq[:K].any():
                self._update_waits += 1  # nothing moved yet (see below)
                return
            self._snapshot = None
            self._update_waits = 0
            ref, view = self._ar_up.reserve(2 * K)
            view[:] = sq
            self._up_rows.append(_UpRow(step, list(range(K)), ref, True))
            self._host = None
            return
        params = [_sample(p) for _, _, p in self._params]
        if any(p.shape != s.shape for p, s in zip(params, snaps)):
            self._snapshot = None
            return
        diffs = torch._foreach_sub(params, snaps)
        norms = _norm_list(list(diffs) + snaps)
        checked = bool(norms) and norms[0].device.type == "cpu"
        if checked and self._update_waits < _UPDATE_WAIT:
            # Nothing moved since the snapshot: no optimizer step came between the two forwards
            # (gradient accumulation).  Keep the snapshot and look again at the next forward; on
            # the CPU reading the norms costs no sync (elsewhere such rows are dropped when read).
            if not any(float(t) for t in norms[:len(params)]):
                self._update_waits += 1
                return
        self._snapshot = None
        self._update_waits = 0
        row = _UpRow(step, list(range(len(params))), self._ar_up.put(norms, square=len(norms)), checked)
        self._up_rows.append(row)
        self._host = None

    # ------------------------------------------------------------------ born dead
    def born_dead(self, batch: Any) -> list:
        """Check one batch at initialisation for units that are dead before training starts.

        Runs the model on ``batch`` (a tensor, or a tuple/dict of arguments) without gradients,
        with the random state and buffers (BatchNorm statistics) restored afterwards, so training
        is unchanged; the step counter does not move.  Returns the ``born_dead`` findings (also
        included in :meth:`findings`).
        """
        attached = self._attached
        self.attach()
        buffers = {k: b.detach().clone() for k, b in self.model.named_buffers()}
        self._flush()
        saved = (self._fw_rows, self._bw_rows, self._streak, self._layout, self._offsets, self._seg, self._seg_equal,
                 self._step, self._groups, self._ubufs, self._flush_every)
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
            self._flush()
            rows = self._fw_rows
        finally:
            self._in_born = False
            self._recording = False
            self._window_records = saved_window
            (self._fw_rows, self._bw_rows, self._streak, self._layout, self._offsets, self._seg, self._seg_equal,
             self._step, self._groups, self._ubufs, self._flush_every) = saved
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
            C, j = row.dead
            inactive = C[j][0].cpu()
            for pos, (li, n) in enumerate(zip(row.dead_layers, row.dead_units)):
                fractions[self.layers[li].name] = float(inactive[pos]) / max(n, 1)
        self._born = fractions
        self._host = None
        return born_dead_findings(self._data(), self.thresholds)

    # ------------------------------------------------------------------ reading
    def _data(self) -> ProbeRecords:
        self._flush()
        key = (len(self._fw_rows), len(self._bw_rows), len(self._up_rows), len(self._generic_rows), len(self.layers),
               len(self._losses), self._eval_forwards)
        if self._host is None or self._host_key != key:
            self._host = self._read()
            self._host_key = key
        return self._host

    def _read(self) -> ProbeRecords:
        """Decode the device rows into typed records (the only reader of the rows)."""
        accs: dict[tuple[int, int], _Acc] = {}

        def acc(step: int, li: int) -> _Acc:
            a = accs.get((step, li))
            if a is None:
                a = accs[(step, li)] = _Acc()
            return a

        for row in self._fw_rows:
            S = _val(row.scalars).detach().to("cpu", dtype=torch.float64).numpy() if row.scalars is not None else None
            for c in row.calls:
                a = acc(row.step, c.layer)
                s, q2 = float(S[c.offset]), float(S[c.offset + 1])
                # a sum of squares can overflow where the values are finite: judge by the sum
                a.fin &= math.isfinite(s)
                if c.kind == "act":
                    sat = c.const + sum(cf * float(S[c.offset + 2 + j]) for j, cf in enumerate(c.coefs))
                    if not math.isnan(sat):
                        sat = float(round(sat))
                    a.act = True
                    a.s += s
                    a.q2 += q2
                    a.n += c.n
                    a.sat += sat
                else:
                    a.param = True
                    a.oq2 += q2
                    a.on += c.n
            if row.dead is not None:
                C, j = row.dead
                D = C[j].detach().to("cpu", dtype=torch.float64).numpy()
                for pos, (li, n) in enumerate(zip(row.dead_layers, row.dead_units)):
                    a = acc(row.step, li)
                    a.inactive = float(D[0, pos]) / n
                    a.dead = float(D[1, pos]) / n
                    if D.shape[0] > 2 and self._plans.get(li) is not None and self._plans[li].counts_saturation:
                        c = D[2, pos] / TINY
                        a.sat -= float(round(c)) if math.isfinite(c) else math.nan
        params = self._params
        weights = [is_weight(p) for _, _, p in params]  # the weight_grad_norm quantity's tensors
        param_norms: dict[int, dict[str, float]] = {}
        for row in self._bw_rows:
            parts = [_val(t).detach().to("cpu", dtype=torch.float64) for t in (row.p_sq, row.o_sq) if t is not None]
            T = torch.cat(parts).numpy() if parts else np.zeros(0)
            per: dict[int, list[int]] = {}
            for j, pi in enumerate(row.params):
                per.setdefault(params[pi][0], []).append(j)
            # gradients accumulate in .grad, so the last backward of a step holds the step's total
            for li, js in per.items():
                a = acc(row.step, li)
                vals = T[js]
                a.g2 = float(np.sum(vals))
                a.gnum = float(sum(params[row.params[j]][2].numel() for j in js))
                wj = [j for j in js if weights[row.params[j]]]
                if wj:
                    a.wg2 = float(np.sum(T[wj]))
                a.gfin = a.gfin and bool(np.all(np.isfinite(vals)))
            param_norms[row.step] = {params[pi][1]: math.sqrt(float(T[j])) for j, pi in enumerate(row.params)}
            base = len(row.params)
            for j, li in enumerate(row.out_layers):
                a = acc(row.step, li)
                v = float(T[base + j])
                a.og2 = (0.0 if math.isnan(a.og2) else a.og2) + v
                a.gfin = a.gfin and math.isfinite(v)
        for row in self._up_rows:
            T = _val(row.norms).detach().to("cpu").double().numpy()
            k = len(row.params)
            if k and not row.checked and not np.any(T[:k]):
                # no parameter moved between the two forwards: no optimizer step came between them
                # (gradient accumulation: several forward/backward per step), not an update of 0
                continue
            for j, pi in enumerate(row.params):
                a = acc(row.step, params[pi][0])
                a.d2 = (0.0 if math.isnan(a.d2) else a.d2) + float(T[j])
                a.w2 = (0.0 if math.isnan(a.w2) else a.w2) + float(T[k + j])
        for step, keys, ref in self._generic_rows:
            for (li, name), v in zip(keys, _val(ref).detach().double().reshape(-1).cpu().tolist()):
                acc(step, li).extra[name] = v
        records = []
        layers = self.layers
        for (step, li), a in sorted(accs.items(), key=lambda kv: (kv[0][0], layers[kv[0][1]].order, kv[0][1])):
            L = layers[li]
            r = LayerRecord(step, L.name, L.order if L.order < 1 << 30 else -1, L.kind, L.module, L.activation)
            if a.act and a.n:
                mean = a.s / a.n
                r.mean = mean
                r.std = math.sqrt(max(a.q2 / a.n - mean * mean, 0.0)) if math.isfinite(a.q2) else math.nan
                r.saturated = a.sat / a.n
                r.out_rms = math.sqrt(a.q2 / a.n)
            elif a.param and a.on:
                r.out_rms = math.sqrt(a.oq2 / a.on)
            r.inactive, r.dead = a.inactive, a.dead
            if not math.isnan(a.og2):
                r.out_grad_norm = math.sqrt(a.og2)
            if not math.isnan(a.g2):
                r.param_grad_norm = math.sqrt(a.g2)
                r.param_grad_rms = r.param_grad_norm / math.sqrt(max(a.gnum, 1.0))
            if not math.isnan(a.wg2):
                r.weight_grad_norm = math.sqrt(a.wg2)
            if not math.isnan(a.w2):
                r.weight_norm = math.sqrt(a.w2)
                r.update_ratio = math.sqrt(a.d2) / r.weight_norm if r.weight_norm > 0 else math.nan
            r.nonfinite = not a.fin
            r.grad_nonfinite = not a.gfin
            for name, v in a.extra.items():
                setattr(r, name, v)
            records.append(r)
        streak = self._streak.detach().cpu().numpy() if self._streak is not None else None
        streaks = {self.layers[li].name: streak[off:off + n].copy() for li, (off, n) in self._offsets.items()} \
            if streak is not None else {}
        settings = Settings(type(self.model).__name__, self.every, self.window, self.saturation,
                            self.update_every, self.out_grads_every)
        roles = {l.name: l.role for l in self.layers}
        start = {}
        if self._init_sq:
            vals = torch.stack([v.double() for _, v in self._init_sq]).cpu().tolist()
            start = {self.layers[li].name: v for (li, _), v in zip(self._init_sq, vals)}
        infos = [replace(self._info(l), role=roles[l.name], sigma_w2=_sigma_w2(self._module_of.get(l.index)),
                         sigma_w2_start=start.get(l.name, math.nan)) for l in self.iter_layers()]
        inputs = []
        if self._inputs:
            host = torch.stack([_val(ref).double() for _, ref, _ in self._inputs]).cpu().tolist()
            inputs = [(s_, a / n, b / n) for (s_, _, n), (a, b) in zip(self._inputs, host)]
        losses = []
        if self._losses:
            vals = [v for _, v in self._losses]
            host = (torch.stack([v.double().reshape(()) for v in vals]).cpu().tolist()
                    if all(isinstance(v, Tensor) for v in vals) else [float(v) for v in vals])
            losses = [(s_, float(v)) for (s_, _), v in zip(self._losses, host)]
        histograms = {}
        for (key, li), (st, (r, counts)) in sorted(self._pre_results.items(),
                                                    key=lambda kv: (self.layers[kv[0][1]].order, kv[0][1])):
            if key == "histogram":
                histograms[self.layers[li].name] = Histogram(st, float(r), counts.detach().cpu().numpy())
        seen = {"eval_forwards": self._eval_forwards, "train_forwards": self._train_forwards,
                "compiled": _is_compiled(self.model) or self._traced,
                "fused_rnn": [n for n, m in self.model.named_modules() if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN))],
                "uncatalogued": list(self._uncatalogued), "looped": dict(self._looped)}
        return ProbeRecords(settings, infos, records, param_norms, streaks, dict(self._born), inputs, losses, seen,
                            histograms)

    def _info(self, layer: ProbeLayer) -> LayerInfo:
        bias = getattr(self._module_of.get(layer.index), "bias", None)
        bias_mean = float(bias.detach().float().mean()) if isinstance(bias, Tensor) and bias.numel() else math.nan
        return LayerInfo(layer.name, layer.kind, layer.module, layer.spec, layer.order if layer.order < 1 << 30 else -1,
                         layer.chain, tuple(layer.param_names), layer.numel, bias_mean)

    def read(self) -> ProbeRecords:
        """Everything recorded so far as typed records (:class:`~actlab.probe.records.ProbeRecords`)."""
        return self._data()

    def records(self) -> list[LayerRecord]:
        """One :class:`LayerRecord` per layer and recorded step, in step then forward order."""
        return list(self._data().records)

    def steps(self) -> list[int]:
        """The recorded steps."""
        return self._data().steps()

    def layer_grad_norms(self, step: int | None = None, *, which: str = "params") -> dict[str, float]:
        """Gradient norm of each layer at ``step``: see :meth:`ProbeRecords.layer_grad_norms`."""
        return self._data().layer_grad_norms(step, which=which)

    def param_grad_norms(self, step: int | None = None) -> dict[str, float]:
        """Gradient norm of each parameter tensor at ``step`` (default: the last backward)."""
        return self._data().param_grad_norms(step)

    def findings(self) -> list:
        """The detectors' findings, most severe first (see :mod:`actlab.probe.findings`)."""
        return detect(self._data(), self.thresholds)

    def summary(self, *, print_: bool = True, console: Any = None, wide: bool = False):
        """A rich table per layer (first→last recorded step of the key columns), a legend, then the
        findings; it fits 100 columns, ``wide=True`` shows every column."""
        from actlab.probe.export import summary

        return summary(self._data(), self.findings(), print_=print_, console=console, wide=wide)

    def to_json(self, path: Any) -> Any:
        """Write settings, layers, records and findings as JSON; returns the path."""
        from actlab.probe.export import to_json

        return to_json(self._data(), self.findings(), self.thresholds, path)

    def to_html(self, path: Any, *, title: str | None = None) -> Any:
        """Write a self-contained HTML report (findings with figures, table, plots); returns the path."""
        from actlab.probe.report import to_html

        return to_html(self._data(), self.findings(), path, title=title)

    def to_csv(self, path: Any) -> Any:
        """Write the records as CSV (one row per layer and step); returns the path."""
        from actlab.probe.export import to_csv

        return to_csv(self._data(), path)

    def to_tensorboard(self, logdir: Any) -> Any:
        """Write the records as TensorBoard scalars (needs ``tensorboard`` installed)."""
        from actlab.probe.export import to_tensorboard

        return to_tensorboard(self._data(), self.findings(), logdir)

    def plot(self, kind: str, out: Any = None, **kw: Any) -> Any:
        """Save a PNG of one plot kind (:data:`actlab.probe.plots.KINDS`: ``"grad_norm"``,
        ``"dead_saturated"``, ``"activations"``, ``"grad_profile"``, one per quantity with a plot)."""
        from actlab.probe.plots import plot

        return plot(self._data(), kind, out, **kw)

    def __repr__(self) -> str:
        acts = sum(1 for l in self.layers if l.spec is not None)
        state = "attached" if self._attached else "detached"
        return (f"Probe({type(self.model).__name__}, every={self.every}, window={self.window}, "
                f"saturation={self.saturation:g}; {len(self.layers)} layers, {acts} activations; {state})")

    def iter_layers(self) -> Iterator[ProbeLayer]:
        return iter(sorted(self.layers, key=lambda l: (l.order, l.index)))
