"""The batched engine: many MLP configurations trained as one stacked computation.

Configurations that share a shape (:attr:`Config.shape_key`: depth, width, data, steps,
batch size, optimiser) are trained together.  Layer ``l``'s weights of all ``G`` models are
one tensor of shape ``(G, in, out)``; the forward pass is one ``torch.baddbmm`` per layer, the
backward pass is written out by hand with the activations' own backward
(:meth:`ActivationSpec.backward`, the one the autograd Function uses), and the optimiser (SGD,
heavy-ball momentum, Adam) updates the stacked tensors in place with a per-model learning rate of shape ``(G, 1, 1)``.  No autograd graph is
built.  For plain SGD the per-model learning rate is folded into the loss gradient, so a
layer's weight update *is* one in-place ``baddbmm_`` (``W -= h^T (lr * dz)``), and a step
is 3 * depth + 2 batched matmuls and a handful of elementwise ops.

One run contract with the lab: a configuration's training part is the lab's
:class:`~actlab.lab.train.TrainConfig` (:meth:`Config.train_config`), its data the lab's
:class:`~actlab.lab.data.Dataset`, its batches the lab's :class:`~actlab.lab.train.EpochBatches`
(a fresh permutation each epoch, drawn from the model's own seed), and its initial weights the
lab's initialiser (:func:`init_params`), so a model's trajectory does not depend on which models
share its group; :func:`train_reference` trains one configuration alone with
:func:`actlab.lab.train.train` (``torch.optim`` and autograd), and the tests hold the two equal.

Models in one group may use different activations: the group is sorted by activation and
each activation is applied to its contiguous slice of the stack.  Learnable hyperparameters
(PReLU's slope) are trained too: one scalar per model and hidden layer, as ``nn.PReLU()``, updated
by the same optimiser; their trained values come back in ``final["learned"]``.  A model whose loss turns
NaN/Inf is marked diverged (with the step), its learning rate and weights are zeroed, and
it cannot disturb the others (no operation mixes models).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor, nn

from actlab._threads import torch_threads
from actlab.activations import Activation, ActivationSpec, get
from actlab.activations import apply as act_apply
from actlab.lab.data import Dataset, load_dataset
from actlab.lab.init import init_weights
from actlab.lab.models import MLP
from actlab.lab.train import METRICS, EpochBatches, TrainResult
from actlab.lab.train import train as lab_train
from actlab.probe.quantities.dead import dead_on_data
from actlab.probe.quantities.inactive import inactive_share, inactive_units
from actlab.probe.quantities.param_grad_norm import param_grad_norm
from actlab.probe.quantities.saturated import saturated_share, saturating_side
from actlab.probe.quantities.weight_grad_norm import weight_grad_norm
from actlab.sweep.spec import INIT_ALIASES, Config, Record

ADAM_EPS = 1e-8  # torch.optim.Adam's default, which the lab's optimiser uses
_LOG2_E = 1.4426950408889634


# ------------------------------------------------------------------------------------------ data
@lru_cache(maxsize=16)
def load_data(name: str, preprocess: str = "standardise", n: int | None = None,
              dtype: torch.dtype = torch.float32) -> Dataset:
    """The lab's :class:`~actlab.lab.data.Dataset` (:func:`~actlab.lab.data.load_dataset`, split
    seed 0, flattened) with inputs in ``dtype``; cached, since every chunk of a sweep reads it."""
    ds = load_dataset(name, n=n, preprocess=preprocess, seed=0, flatten=True)
    return replace(ds, x_train=ds.x_train.to(dtype).contiguous(), x_test=ds.x_test.to(dtype).contiguous(),
                   y_train=ds.y_train.long().reshape(-1), y_test=ds.y_test.long().reshape(-1))


# ------------------------------------------------------------------------------------------ seeds
def layer_sizes(config: Config, in_features: int, n_classes: int) -> list[tuple[int, int]]:
    """``(fan_in, fan_out)`` of each linear layer; maxout's layers emit ``width * pieces`` units."""
    k = get(config.activation).group_size(dict(config.activation_params))
    sizes, fan_in = [], in_features
    for _ in range(config.depth):
        sizes.append((fan_in, config.width * k))
        fan_in = config.width
    sizes.append((fan_in, n_classes))
    return sizes


def init_params(config: Config, in_features: int, n_classes: int,
                dtype: torch.dtype = torch.float32) -> list[tuple[Tensor, Tensor]]:
    """Initial ``(weight (out, in), bias (out,))`` of every layer, drawn by the lab's initialiser.

    The configuration's MLP is built as :class:`actlab.lab.models.MLP` in ``dtype`` and
    initialised by :func:`actlab.lab.init.init_weights` (scheme ``config.init``, its aliases
    resolved by :data:`~actlab.sweep.spec.INIT_ALIASES`; ``**config.init_args``; seed
    ``config.seed``), so an engine model starts exactly where the lab's one-by-one model with
    the same seed starts, and the one-by-one reference (:func:`reference_model`) too.
    """
    b = config.bias_init
    bias = "zeros" if b == "zeros" else "uniform" if b == "torch" else float(b)
    scheme = INIT_ALIASES.get(config.init, config.init)
    key = (in_features, n_classes, config.depth, config.width, config.activation_key, dtype)
    # One template model per architecture, re-initialised for each configuration: every scheme
    # (and the explicit bias) overwrites all of its weights and biases, and building a fresh MLP
    # would cost twice the draws.  The lock serialises the shards of a group, which share it.
    with _TEMPLATE_LOCK:
        model = _TEMPLATES.get(key)
        if model is None:
            if len(_TEMPLATES) >= 64:
                _TEMPLATES.clear()
            # nn.Linear's own reset draws from the global generator: leave the caller's stream alone.
            with torch.random.fork_rng(devices=[]):
                model = _TEMPLATES[key] = lab_model(config, in_features, n_classes, dtype=dtype)
        init_weights(model, scheme, bias=bias, seed=int(config.seed), **dict(config.init_args))
        return [(m.weight.detach().clone(), m.bias.detach().clone()) for m in model.net if isinstance(m, nn.Linear)]


_TEMPLATES: dict[tuple, nn.Module] = {}
_TEMPLATE_LOCK = threading.Lock()


def lab_model(config: Config, in_features: int, n_classes: int,
              params: Sequence[tuple[Tensor, Tensor]] | None = None, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The configuration as the lab's :class:`actlab.lab.models.MLP`, with ``params`` (``(weight (out, in),
    bias (out,))`` per layer, e.g. :attr:`~actlab.lab.train.TrainResult.params`) loaded when given.

    Example::

        >>> (r,) = train_group([Config(steps=20)], Record(keep_params=True))
        >>> model = lab_model(r.config, 64, 10, r.params)
    """
    model = MLP(in_features, n_classes, depth=config.depth, width=config.width, activation=config.activation,
                activation_params=dict(config.activation_params) or None).to(dtype)
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    if [tuple(m.weight.shape[::-1]) for m in linears] != layer_sizes(config, in_features, n_classes):
        raise ValueError(f"the lab's MLP for {config.label} has other layer sizes than the engine's")
    if params is not None:
        with torch.no_grad():
            for m, (w, b) in zip(linears, params):
                m.weight.copy_(w)
                m.bias.copy_(b)
    return model


# ------------------------------------------------------------------------------------------ engine
class _Slices:
    """The activations of a sorted group, each over its contiguous slice of models.

    Learnable hyperparameters (PReLU's slope) are trained: one scalar per model and hidden
    layer (``nn.PReLU``'s default ``num_parameters=1``), held in :attr:`learn` as ``(G, 1, 1)``
    tensors and updated by the optimiser like the weights; :meth:`backward` leaves their
    gradients in :attr:`grads`.
    """

    def __init__(self, configs: Sequence[Config], depth: int = 0, dtype: torch.dtype = torch.float32) -> None:
        self.parts: list[tuple[ActivationSpec, dict[str, Any], int, int]] = []
        start = 0
        for i in range(1, len(configs) + 1):
            if i == len(configs) or configs[i].activation_key != configs[start].activation_key:
                c = configs[start]
                spec = get(c.activation)
                p = dict(spec.resolve(**dict(c.activation_params)))
                p["training"] = False  # RReLU uses its mean slope: deterministic per seed
                self.parts.append((spec, p, start, i))
                start = i
        self.needs_input = any(spec.derivative_from != "output" for spec, *_ in self.parts)
        self.learnable = any(spec.learnable for spec, *_ in self.parts)
        # The catalog's in-place forms, where declared, for buffers the caller owns: the matmul's
        # fresh output is overwritten while still in cache (benchmarks/sweep.py measures it).
        one = self.parts[0][0] if len(self.parts) == 1 and not self.learnable else None
        self.forward_inplace = one.forward_inplace if one is not None and not self.needs_input else None
        self.vjp_inplace = one.vjp_inplace if one is not None else None
        self.learn: list[dict[str, Tensor]] = []
        if self.learnable:
            for _ in range(depth):
                d: dict[str, Tensor] = {}
                for spec, p, a, b in self.parts:
                    for name in spec.learnable:
                        d.setdefault(name, torch.zeros(len(configs), 1, 1, dtype=dtype))[a:b] = float(p[name])
                self.learn.append(d)
        self.grads: list[dict[str, Tensor]] = [{k: torch.zeros_like(v) for k, v in d.items()} for d in self.learn]

    def params(self, spec: ActivationSpec, p: dict[str, Any], a: int, b: int, l: int | None) -> dict[str, Any]:
        """``p`` with the current values of hidden layer ``l``'s learnable hyperparameters for models ``[a, b)``."""
        if l is None or not spec.learnable:
            return p
        return {**p, **{n: self.learn[l][n][a:b] for n in spec.learnable}}

    def forward(self, z: Tensor, l: int | None = None, own: bool = False) -> Tensor:
        """The activations of ``z``; with ``own``, ``z`` may be overwritten (and returned)."""
        if own and self.forward_inplace is not None:
            return self.forward_inplace(z, self.parts[0][1])
        if len(self.parts) == 1:
            spec, p, a, b = self.parts[0]
            return spec.forward(z, self.params(spec, p, a, b, l))
        outs = [spec.forward(z[a:b], self.params(spec, p, a, b, l)) for spec, p, a, b in self.parts]
        return torch.cat(outs)

    def backward(self, g: Tensor, z: Tensor | None, y: Tensor, l: int | None = None, own: bool = False) -> Tensor:
        """``g * f'``; with ``own``, ``g`` may be overwritten (and returned)."""
        if own and self.vjp_inplace is not None:
            return self.vjp_inplace(g, z, y, self.parts[0][1])
        if not self.learnable or l is None:
            if len(self.parts) == 1:
                spec, p, _, _ = self.parts[0]
                return spec.backward(g, z, y, p)
            return torch.cat([spec.backward(g[a:b], None if z is None else z[a:b], y[a:b], p)
                              for spec, p, a, b in self.parts])
        outs = []
        for spec, p, a, b in self.parts:
            gs, zs_, ys = g[a:b], None if z is None else z[a:b], y[a:b]
            if not spec.learnable:
                outs.append(spec.backward(gs, zs_, ys, p))
                continue
            gx, pg = spec.backward_params(gs, zs_, ys, self.params(spec, p, a, b, l), spec.learnable)
            for n in spec.learnable:
                self.grads[l][n][a:b] = pg[n]
            outs.append(gx)
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def derivative_abs(self, z: Tensor | None, y: Tensor, l: int | None = None) -> Tensor:
        """``|f'(z)|`` of every model, a fresh tensor."""
        if len(self.parts) == 1:
            spec, p, a, b = self.parts[0]
            # not in place: a derivative may return a view
            return spec.derivative(z, y, self.params(spec, p, a, b, l)).abs()
        return torch.cat([spec.derivative(None if z is None else z[a:b], y[a:b], self.params(spec, p, a, b, l))
                          for spec, p, a, b in self.parts]).abs_()

    def saturating_side(self, z: Tensor | None, y: Tensor) -> Tensor | None:
        """The probe's :func:`~actlab.probe.quantities.saturated.saturating_side` of every model
        (``None``: every element of every model is on a saturating side)."""
        if all(spec.saturates == "both" for spec, *_ in self.parts):
            return None
        out = []
        for spec, p, a, b in self.parts:
            m = saturating_side(spec, None if z is None else z[a:b], y[a:b], p)
            out.append(torch.ones_like(y[a:b], dtype=torch.bool) if m is None else m)
        return out[0] if len(out) == 1 else torch.cat(out)

    def max_abs_derivative(self, n_models: int, dtype: torch.dtype) -> Tensor:
        """``max|f'|`` of each model's activation, ``(G, 1, 1)``."""
        t = torch.empty(n_models, 1, 1, dtype=dtype)
        for spec, _, a, b in self.parts:
            t[a:b] = spec.max_abs_derivative
        return t


def _record_steps(steps: int, every: int, first: int = 0) -> list[int]:
    s = list(range(min(first, steps - 1), steps, every))
    if s[-1] != steps - 1:
        s.append(steps - 1)
    return s


def train_group(configs: Sequence[Config], record: Record | None = None, *,
                dtype: torch.dtype = torch.float32,
                progress: Callable[[int], None] | None = None,
                threads: int | None = None) -> list[TrainResult]:
    """Train configurations that share :attr:`Config.shape_key` as one stacked computation.

    Args:
        configs: the configurations (any order; results come back in the same order).
        record: what to record and when (default :class:`Record()`).
        dtype: float dtype of weights and data.
        progress: called with the number of steps done so far, on the record schedule.

    Returns:
        one :class:`~actlab.lab.train.TrainResult` per configuration.

    Example::

        >>> from actlab.sweep import Config, train_group
        >>> res = train_group([Config(seed=s, steps=20) for s in range(4)])
        >>> [r.status for r in res]
        ['done', 'done', 'done', 'done']
    """
    if not configs:
        return []
    record = record or Record()
    keys = {c.shape_key for c in configs}
    if len(keys) != 1:
        raise ValueError(f"train_group needs configurations of one shape; got {len(keys)} shape keys")
    threads = default_threads() if threads is None else max(1, int(threads))
    shards = _shards(configs, threads)
    if len(shards) == 1:
        # One stack: ``threads`` intra-op threads, set explicitly.  Left at torch's default (every
        # core), a stack asked to run on one thread ran many times slower on a loaded machine
        # with few cores: OpenMP's barriers spin while other processes hold the cores.
        with torch_threads(threads):
            return _train_stack(configs, record, dtype, progress)
    # Shards of the stack on parallel Python threads, each running single-threaded kernels:
    # torch releases the GIL inside every op, and one-thread kernels avoid OpenMP's barriers,
    # which cost most when other processes share the cores.  A worker trains its shards one
    # after the other; worker 0 reports progress in steps of the whole group.
    workers = min(threads, len(shards))
    mine = [shards[k::workers] for k in range(workers)]

    def work(k: int) -> list[tuple[list[int], list[TrainResult]]]:
        out = []
        for j, sh in enumerate(mine[k]):
            cb = None
            if k == 0 and progress is not None:
                n = len(mine[0])
                cb = lambda s, j=j, n=n: progress((j * configs[0].steps + s) // n)  # type: ignore[misc]
            out.append((sh, _train_stack([configs[i] for i in sh], record, dtype, cb)))
        return out

    with torch_threads(1):
        if workers == 1:
            parts = [work(0)]
        else:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(work, range(workers)))
    res: list[TrainResult | None] = [None] * len(configs)
    for part in parts:
        for sh, rs in part:
            for i, r in zip(sh, rs):
                res[i] = r
    return res  # type: ignore[return-value]


# Models per stack: a stack whose activations, (G, batch, width) floats, stay near 512 KiB ran
# fastest on the 2-core machine (width 64, batch 128, one thread: 5,900 model-steps/s at 12-16
# models against 5,300 at 32), since each layer's operands then stay in cache between kernels.
STACK_ELEMENTS = 1 << 17


def _shards(configs: Sequence[Config], threads: int) -> list[list[int]]:
    """Indices of the stacks to train: at least one per thread, none larger than STACK_ELEMENTS allows."""
    c0 = configs[0]
    per = max(1, STACK_ELEMENTS // max(1, c0.batch_size * max(c0.width, 1)))
    n = min(len(configs), max(threads, -(-len(configs) // per)))
    return [list(range(i, len(configs), n)) for i in range(n)]


def default_threads() -> int:
    """Parallel shards per group: the CPU cores this process may use (``ACTLAB_SWEEP_THREADS`` overrides)."""
    env = os.environ.get("ACTLAB_SWEEP_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _train_stack(configs: Sequence[Config], record: Record, dtype: torch.dtype,
                 progress: Callable[[int], None] | None) -> list[TrainResult]:
    order = sorted(range(len(configs)), key=lambda i: (configs[i].activation_key, i))
    cs = [configs[i] for i in order]
    c0 = cs[0]
    tcs = [c.train_config() for c in cs]  # the training settings, as the lab reads them
    data = load_data(c0.data, c0.preprocess, c0.n, dtype)
    X, Y, n_train = data.x_train, data.y_train, data.n_train
    batches = [EpochBatches(n_train, tc.batch_size, tc.seed) for tc in tcs]
    G, L, depth, steps, B = len(cs), c0.depth + 1, c0.depth, tcs[0].steps, batches[0].batch_size
    acts = _Slices(cs, depth, dtype)
    t_start = time.perf_counter()

    # Parameters stacked as (G, in, out) and (G, 1, out), from each model's own generator.
    inits = [init_params(c, data.in_features, data.n_classes, dtype) for c in cs]
    Ws = [torch.stack([inits[g][l][0] for g in range(G)]).transpose(1, 2).contiguous() for l in range(L)]
    bs = [torch.stack([inits[g][l][1] for g in range(G)]).unsqueeze(1).contiguous() for l in range(L)]
    if not record.keep_params:
        del inits
    # The read-out is padded to a multiple of 16 columns: a (B, 64) x (64, 10) bmm runs as slowly
    # as a 64-column one (and log_softmax over a last dim of 10 is far slower than over 16).  The pad
    # columns have zero weights and a -inf bias: their softmax is exactly 0, so their gradients
    # are 0 and they never change or touch the real classes.
    C = data.n_classes
    Cp = -(-C // 16) * 16
    if Cp != C:
        Ws[depth] = torch.cat([Ws[depth], Ws[depth].new_zeros(G, Ws[depth].shape[1], Cp - C)], 2)
        bs[depth] = torch.cat([bs[depth], bs[depth].new_full((G, 1, Cp - C), -math.inf)], 2)
    params = [t for l in range(L) for t in (Ws[l], bs[l])]
    # learnable activation hyperparameters (PReLU's slope), after the weights: index 2 L + k
    learned = [(l, n) for l in range(depth) for n in sorted(acts.learn[l])] if acts.learnable else []
    params += [acts.learn[l][n] for l, n in learned]

    col = lambda vals: torch.tensor(vals, dtype=dtype).view(G, 1, 1)
    lr = col([tc.lr for tc in tcs])
    alive = torch.ones(G, 1, 1, dtype=dtype)
    fast_scale = lr * alive / B  # kept until a model diverges: two kernels less per step
    opt = tcs[0].optimiser
    mom = col([tc.betas[0] if opt == "adam" else tc.momentum for tc in tcs])
    beta2 = tcs[0].betas[1]
    state1 = [torch.zeros_like(p) for p in params] if opt in ("momentum", "adam") else []
    state2 = [torch.zeros_like(p) for p in params] if opt == "adam" else []

    rec_steps = _record_steps(steps, record.every, record.first)
    rec_index = {s: i for i, s in enumerate(rec_steps)}
    R = len(rec_steps)
    losses = torch.empty(steps, G, dtype=dtype)
    st_grad = torch.full((R, L, G), math.nan, dtype=dtype)
    st_wgrad = torch.full((R, L, G), math.nan, dtype=dtype)
    st_inactive = torch.full((R, depth, G), math.nan, dtype=dtype)
    st_sat = torch.full((R, depth, G), math.nan, dtype=dtype)
    st_learn = torch.full((R, len(learned), G), math.nan, dtype=dtype)  # learnable values after record steps
    want_act_stats = bool({"inactive", "saturated"} & set(record.metrics))
    max_abs = acts.max_abs_derivative(G, dtype)
    diverged_at = [None] * G
    full = _FullSetMetrics(record, data, R, G)
    full.at_init(Ws, bs, acts)
    checked = 0
    block = 32
    minus_one = torch.full((G, B, 1), -1.0, dtype=dtype)
    idx_block = torch.empty(0)

    for t in range(steps):
        if t % block == 0:
            # Each model's indices from its own EpochBatches, the lab's batch order, a block of
            # steps at a time (a test holds the engine equal to lab.train step by step).
            nb = min(block, steps - t)
            idx_block = torch.stack([b.take(nb) for b in batches], 1)
        idx = idx_block[t % block]
        flat = idx.reshape(-1)
        h = X.index_select(0, flat).view(G, B, -1)
        tg = Y.index_select(0, flat).view(G, B, 1)

        hs, zs = [h], []
        for l in range(depth):
            z = torch.baddbmm(bs[l], hs[-1], Ws[l])
            hs.append(acts.forward(z, l, own=True))
            # Specs whose derivative reads only the output let z go now: a smaller working set
            # keeps the matmuls' operands in cache.
            zs.append(z if acts.needs_input else None)
            del z
        logits = torch.baddbmm(bs[depth], hs[-1], Ws[depth])

        # Cross-entropy and its gradient (softmax - onehot) / B, per model.
        lp = torch.log_softmax(logits, -1)
        torch.sum(lp.gather(-1, tg), (1, 2), out=losses[t]).div_(-B)
        # softmax = 2^(log2(e) lp): torch's float32 exp runs several times slower than exp2 on
        # the CPU (worst on the very negative log-probabilities of a confident model).
        dz = lp.mul_(_LOG2_E).exp2_().scatter_add_(-1, tg, minus_one)

        ri = rec_index.get(t)
        fast = ri is None and opt == "sgd"
        # Fast path: fold lr into dz, so every gradient below is already lr-scaled and each
        # weight update is one in-place baddbmm_.
        dz.mul_(fast_scale if fast else alive / B)
        for l in range(depth, -1, -1):
            dh = torch.bmm(dz, Ws[l].transpose(1, 2)) if l > 0 else None
            if fast:
                Ws[l].baddbmm_(hs[l].transpose(1, 2), dz, alpha=-1.0)
                bs[l].sub_(dz.sum(1, keepdim=True))
            else:
                gW = torch.bmm(hs[l].transpose(1, 2), dz)
                gb = dz.sum(1, keepdim=True)
                if ri is not None and "param_grad_norm" in record.metrics:
                    st_grad[ri, l] = param_grad_norm(gW, gb, model_dims=1)
                if ri is not None and "weight_grad_norm" in record.metrics:
                    st_wgrad[ri, l] = weight_grad_norm(gW, model_dims=1)
                _update(opt, 2 * l, Ws[l], gW, state1, state2, lr * alive, mom, beta2, t + 1)
                _update(opt, 2 * l + 1, bs[l], gb, state1, state2, lr * alive, mom, beta2, t + 1)
            if l > 0:
                if ri is not None and want_act_stats:
                    # the probe's quantities on the stacked (models, batch, units) |f'|
                    d = acts.derivative_abs(zs[l - 1], hs[l], l - 1)
                    st_inactive[ri, l - 1] = inactive_share(d, sample_dims=1)
                    st_sat[ri, l - 1] = saturated_share(d, max_abs, record.saturation_tol, dims=(1, 2),
                                                        side=acts.saturating_side(zs[l - 1], hs[l]))
                dz = acts.backward(dh, zs[l - 1], hs[l], l - 1, own=True)
                for k, (ll, n) in enumerate(learned):
                    if ll == l - 1:  # already lr-scaled on the fast path, as dz is
                        gp = acts.grads[ll][n]
                        if fast:
                            acts.learn[ll][n].sub_(gp)
                        else:
                            _update(opt, 2 * L + k, acts.learn[ll][n], gp, state1, state2, lr * alive, mom, beta2, t + 1)

        if ri is not None:  # one sync per record step: mark and mask diverged models
            bad = ~torch.isfinite(losses[checked:t + 1]).all(0)
            checked = t + 1
            if bool(bad.any()):
                for g in torch.nonzero(bad).flatten().tolist():
                    if diverged_at[g] is None:
                        diverged_at[g] = int(torch.nonzero(~torch.isfinite(losses[:, g][:t + 1]))[0])
                        alive[g] = 0.0
                        fast_scale = lr * alive / B
                        for tens in (*params, *state1, *state2):
                            tens[g].zero_()
                        bs[depth][g, :, C:] = -math.inf
            full.at_record(ri, Ws, bs, acts)  # whole-data-set metrics (off unless asked)
            for k, (ll, n) in enumerate(learned):
                st_learn[ri, k] = acts.learn[ll][n].view(-1)
            if progress is not None:
                progress(t + 1)

    wall = time.perf_counter() - t_start
    Ws[depth], bs[depth] = Ws[depth][..., :C], bs[depth][..., :C]
    # the final metrics by the same function as the curves (whole splits, sums in float64)
    ev_train = loss_and_error(Ws, bs, acts, data.x_train, data.y_train, C)
    ev_test = loss_and_error(Ws, bs, acts, data.x_test, data.y_test, C)
    full.at_end(Ws, bs, acts)
    results: list[TrainResult | None] = [None] * G
    for g, c in enumerate(cs):
        results[order[g]] = _model_result(
            c, g, record, rec_steps, losses, st_grad, st_wgrad, st_inactive, st_sat, ev_train, ev_test, diverged_at[g],
            wall / G)
        full.finish(results[order[g]], g, rec_steps, diverged_at[g])  # type: ignore[arg-type]
        if record.keep_params:
            results[order[g]].params = [(W[g].T.clone(), b[g, 0].clone()) for W, b in zip(Ws, bs)]  # type: ignore[union-attr]
            results[order[g]].params_init = inits[g]  # type: ignore[union-attr]
        names = get(c.activation).learnable if learned else ()
        if names:  # the trained values of the learnable hyperparameters, one dict per hidden layer
            res = results[order[g]]
            res.final["learned"] = [{n: float(acts.learn[l][n][g]) for n in names} for l in range(depth)]  # type: ignore[union-attr]
            # and after each record step: (steps done, one dict per hidden layer)
            vals = st_learn[:, :, g].tolist()
            res.final["learned_curve"] = [  # type: ignore[union-attr]
                (s + 1, [{n: vals[ri][learned.index((l, n))] for n in names} for l in range(depth)])
                for ri, s in enumerate(rec_steps) if diverged_at[g] is None or s < diverged_at[g]]
    return results  # type: ignore[return-value]


def _update(opt: str, i: int, p: Tensor, g: Tensor, s1: list[Tensor], s2: list[Tensor], lr: Tensor,
            mom: Tensor, beta2: float, step: int) -> None:
    """One optimiser step on a stacked parameter, following torch.optim's formulas."""
    if opt == "sgd":
        p.sub_(g * lr)
    elif opt == "momentum":
        buf = s1[i].mul_(mom).add_(g)
        p.sub_(buf * lr)
    else:  # adam, torch.optim.Adam's single-tensor formula with beta1 = momentum
        m = s1[i].lerp_(g, 1 - mom)
        v = s2[i].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bc1 = 1 - mom ** step
        bc2_sqrt = math.sqrt(1 - beta2 ** step)
        denom = (v.sqrt() / bc2_sqrt).add_(ADAM_EPS)
        p.sub_(m / denom * (lr / bc1))


FULL_SET_CHUNK = 2048  # training examples per forward pass of the whole-set metrics (bounds memory)


def _hidden_states(Ws: list[Tensor], bs: list[Tensor], acts: _Slices, x: Tensor, keep: bool = True):
    """Per activation slice ``[a, b)`` of the stack and chunk of examples ``rows``, yield
    ``(spec, params, a, b, rows, pre-activations per hidden layer, outputs per hidden layer, logits)``.

    Each slice runs alone with its own activation, so no ``torch.cat`` joins the slices.  Without
    ``keep`` the two lists come back empty: each layer's buffers are let go as the next is made,
    and a spec's in-place forward overwrites its pre-activations (callers that read only the
    logits then touch a working set of one layer, not of all of them).
    """
    for spec, p, a, b in acts.parts:
        inplace = None if keep or spec.learnable else spec.forward_inplace
        for i in range(0, x.shape[0], FULL_SET_CHUNK):
            rows = slice(i, i + FULL_SET_CHUNK)
            h = x[rows].unsqueeze(0).expand(b - a, -1, -1)
            zs, ys = [], []
            for l in range(len(Ws) - 1):
                z = torch.baddbmm(bs[l][a:b], h, Ws[l][a:b])
                h = inplace(z, p) if inplace is not None else spec.forward(z, acts.params(spec, p, a, b, l))
                if keep:
                    zs.append(z)
                    ys.append(h)
                del z
            yield spec, p, a, b, rows, zs, ys, torch.baddbmm(bs[-1][a:b], h, Ws[-1][a:b])


@torch.no_grad()
def loss_and_error(Ws: list[Tensor], bs: list[Tensor], acts: _Slices, x: Tensor, y: Tensor,
                  n_classes: int) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and error rate ``(G,)`` of every model on ``(x, y)`` (over the first
    ``n_classes`` logits: the read-out may carry padding columns)."""
    G = Ws[0].shape[0]
    loss = torch.zeros(G, dtype=torch.float64)
    wrong = torch.zeros(G, dtype=torch.float64)
    for *_, a, b, rows, _, _, logits in _hidden_states(Ws, bs, acts, x, keep=False):
        logits = logits[..., :n_classes]
        t = y[rows].unsqueeze(0).expand(b - a, -1)
        loss[a:b] += torch.nn.functional.cross_entropy(logits.transpose(1, 2), t, reduction="none").double().sum(1)
        wrong[a:b] += (logits.argmax(-1) != t).sum(1).double()
    return loss / x.shape[0], wrong / x.shape[0]


@torch.no_grad()
def unit_states(Ws: list[Tensor], bs: list[Tensor], acts: _Slices, x: Tensor) -> tuple[Tensor, Tensor]:
    """Fractions ``(G,)`` of hidden units that are dead on the data (the probe's
    :func:`~actlab.probe.quantities.dead.dead_on_data`: ``f'(z) == 0`` for every example of
    ``x``) and off (``z <= 0`` for every example), over all hidden layers of every model."""
    G = Ws[0].shape[0]
    # per layer, per chunk of examples: (G, units) inactive on the chunk, then across chunks
    chunks: list[list[Tensor]] = [[] for _ in Ws[:-1]]
    on = [torch.zeros(G, w.shape[2], dtype=torch.bool) for w in Ws[:-1]]
    slices: dict[tuple[int, int], list[Tensor]] = {}
    for spec, p, a, b, _, zs, ys, _ in _hidden_states(Ws, bs, acts, x):
        for l, (z, yl) in enumerate(zip(zs, ys)):
            d = spec.derivative(z, yl, acts.params(spec, p, a, b, l)).abs()
            slices.setdefault((l, a), []).append(inactive_units(d, sample_dims=1))
            on[l][a:b] |= (z > 0).any(1)
    for (l, _a), masks in sorted(slices.items()):
        chunks[l].append(dead_on_data(masks))
    dead = [torch.cat(c) for c in chunks]  # the parts of the stack in model order
    units = sum(t.shape[1] for t in dead)
    dead_share = sum(t.sum(1) for t in dead) / units
    off = sum((~t).sum(1) for t in on) / units
    return dead_share.double(), off.double()


class _FullSetMetrics:
    """The metrics measured on whole data sets (``train_loss``, ``train_error``, ``test_loss``,
    ``test_error``, ``unit_states``), kept out of the step loop but for one call per record step."""

    CURVES = ("train_loss", "train_error", "test_loss", "test_error")

    def __init__(self, record: Record, data: Dataset, R: int, G: int) -> None:
        self.record, self.data = record, data
        self.curves = [m for m in self.CURVES if m in record.metrics]
        self.splits = [sp for sp in ("train", "test") if f"{sp}_loss" in self.curves or f"{sp}_error" in self.curves]
        self.want_units = "unit_states" in record.metrics
        # (loss, error) of each split: before training, and after each record step's update
        self.at0: dict[str, Tensor] = {}
        self.at = {sp: torch.full((2, R, G), math.nan, dtype=torch.float64) for sp in self.splits}
        self.units0: tuple[Tensor, Tensor] | None = None
        self.units1: tuple[Tensor, Tensor] | None = None

    def _measure(self, Ws, bs, acts, split: str) -> Tensor:
        d = self.data
        x, y = (d.x_train, d.y_train) if split == "train" else (d.x_test, d.y_test)
        return torch.stack(loss_and_error(Ws, bs, acts, x, y, d.n_classes))

    def at_init(self, Ws, bs, acts) -> None:
        for sp in self.splits:
            self.at0[sp] = self._measure(Ws, bs, acts, sp)
        if self.want_units:
            self.units0 = unit_states(Ws, bs, acts, self.data.x_train)

    def at_record(self, ri: int, Ws, bs, acts) -> None:
        for sp in self.splits:
            self.at[sp][:, ri] = self._measure(Ws, bs, acts, sp)

    def at_end(self, Ws, bs, acts) -> None:
        if self.want_units:
            self.units1 = unit_states(Ws, bs, acts, self.data.x_train)

    def finish(self, res: TrainResult, g: int, rec_steps: list[int], diverged_at: int | None) -> None:
        """Add the whole-set metrics of model ``g`` to its result.

        With curves asked for, the evaluations are before training (0 steps done) and after each
        record step's update (``s + 1`` steps done) up to divergence, the last one the end of the
        run, where the four metrics are the final ones; a metric not asked for is NaN before the
        end.  ``steps_to_target`` is the steps done at the first evaluation whose training error
        is <= ``Record.target_error``.  A record's ``m`` is measured after its step's update.
        """
        def ok(step: int) -> bool:
            return diverged_at is None or step < diverged_at

        if self.curves:
            kept = [(ri, s) for ri, s in enumerate(rec_steps) if ok(s)]
            steps = [0] + [s + 1 for _, s in kept]
            end = res.evals[-1] if res.eval_steps else None  # the run's last evaluation (not diverged)
            for m in METRICS:
                vals = [math.nan] * len(steps)
                if m in self.curves:
                    sp, k = m.split("_")[0], 0 if m.endswith("_loss") else 1
                    vals = [float(self.at0[sp][k, g])] + [float(self.at[sp][k, ri, g]) for ri, _ in kept]
                    for r in res.records:
                        r[m] = _num(self.at[sp][k, rec_steps.index(r["step"]), g]) if ok(r["step"]) else None
                if end is not None and steps[-1] == end["step"]:
                    vals[-1] = end[m]  # the final evaluation, as in final
                setattr(res, m, vals)
            res.eval_steps = steps
            target = self.record.target_error
            if target is not None and "train_error" in self.curves:
                hit = [n for n, e in zip(steps, res.train_error) if e <= target]
                res.steps_to_target = hit[0] if hit else None
        if self.want_units:
            assert self.units0 is not None and self.units1 is not None
            res.final["dead_on_data_init"] = float(self.units0[0][g])
            res.final["off_units_init"] = float(self.units0[1][g])
            res.final["dead_on_data"] = math.nan if diverged_at is not None else float(self.units1[0][g])
            res.final["off_units"] = math.nan if diverged_at is not None else float(self.units1[1][g])


def _num(v: Tensor | float) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _model_result(c: Config, g: int, record: Record, rec_steps: list[int], losses: Tensor, st_grad: Tensor,
                  st_wgrad: Tensor, st_inactive: Tensor, st_sat: Tensor, ev_train, ev_test, diverged_at: int | None,
                  wall_per_model: float) -> TrainResult:
    lg = losses[:, g]
    # Whole-model figures reduced in the stats' dtype, for all record steps at once; then every
    # figure read out as Python floats in one go (indexing element by element cost more than the
    # reductions).
    model_stats = {
        "loss": lg[rec_steps],
        "param_grad_norm": st_grad[:, :, g].square().sum(1).sqrt(),  # every layer's weights and biases
        "weight_grad_norm": st_wgrad[:, :, g].square().sum(1).sqrt(),  # every layer's weights, no bias
        "inactive": st_inactive[:, :, g].mean(1),
        "saturated": st_sat[:, :, g].mean(1),
    }
    wanted = ["loss", *(m for m in model_stats if m != "loss" and m in record.metrics)]
    per_model = {m: model_stats[m].tolist() for m in wanted}
    per_layer = {"param_grad_norm": st_grad[:, :, g].tolist(), "weight_grad_norm": st_wgrad[:, :, g].tolist(),
                 "inactive": st_inactive[:, :, g].tolist(), "saturated": st_sat[:, :, g].tolist()}
    n_act = st_inactive.shape[1]
    recs, layers = [], []
    for ri, s in enumerate(rec_steps):
        if diverged_at is not None and s > diverged_at:
            break
        r = {"step": s, **{m: _num(per_model[m][ri]) for m in wanted}}
        recs.append(r)
        for l in range(st_grad.shape[1]):
            row = {"step": s, "layer": l, "param_grad_norm": _num(per_layer["param_grad_norm"][ri][l]),
                   "weight_grad_norm": _num(per_layer["weight_grad_norm"][ri][l])}
            if l < n_act:
                row["inactive"] = _num(per_layer["inactive"][ri][l])
                row["saturated"] = _num(per_layer["saturated"][ri][l])
            else:  # the linear read-out has no activation
                row["inactive"] = row["saturated"] = None
            layers.append(row)
    hit = torch.nonzero(lg <= record.target_loss)
    diverged = diverged_at is not None
    steps_run = lg.shape[0] if not diverged else diverged_at + 1
    last = recs[-1] if recs else {}
    nan = math.nan

    def measured(v: Any) -> float:  # NaN where not measured (a diverged model's weights are zeroed)
        return nan if diverged or v is None else float(v)

    end = {"train_loss": measured(ev_train[0][g]), "test_loss": measured(ev_test[0][g]),
           "train_error": measured(ev_train[1][g]), "test_error": measured(ev_test[1][g])}
    final: dict[str, Any] = {
        "step": steps_run, **end,
        "last_batch_loss": measured(lg[-1]),
        "steps_to_batch_loss": int(hit[0]) if len(hit) and (not diverged or int(hit[0]) < diverged_at) else None,
        "inactive": measured(last.get("inactive")),
        "saturated": measured(last.get("saturated")),
    }
    return TrainResult(
        losses=lg[:steps_run].tolist(), eval_steps=[] if diverged else [steps_run],
        **{m: [] if diverged else [end[m]] for m in METRICS},
        diverged=diverged, diverged_at=diverged_at, steps_run=steps_run,
        stop_reason="diverged" if diverged else "steps", final=final, wall_time=wall_per_model, config=c,
        records=recs, layers=layers)


def train_configs(configs: Sequence[Config], record: Record | None = None, *, chunk_size: int = 64,
                  dtype: torch.dtype = torch.float32, threads: int | None = None) -> list[TrainResult]:
    """Train configurations of any shapes: :func:`group_configs`, then :func:`train_group` on each chunk.

    Returns:
        one :class:`~actlab.lab.train.TrainResult` per configuration, in the order given.
    """
    slots: dict[int, list[int]] = {}
    for i, c in enumerate(configs):
        slots.setdefault(id(c), []).append(i)
    out: list[TrainResult | None] = [None] * len(configs)
    for chunk in group_configs(configs, chunk_size):
        for c, r in zip(chunk, train_group(chunk, record, dtype=dtype, threads=threads)):
            out[slots[id(c)].pop()] = r
    return out  # type: ignore[return-value]


def train_chunk(configs: Sequence[Config], record: Record, threads: int | None = None) -> list[TrainResult]:
    """Train one chunk (configurations of one shape) with the batched engine; the unit of work
    that the process pool and Ray run (it sits here, below both backends, so neither imports the other)."""
    for r in (res := train_group(configs, record, threads=threads)):
        r.losses = []  # every-step losses stay in the worker; the store keeps recorded steps
    return res


def group_configs(configs: Sequence[Config], chunk_size: int = 64) -> list[list[Config]]:
    """Split configurations into stackable chunks: same shape key, at most ``chunk_size`` each.

    The split depends only on the configurations, so every backend trains identical chunks.
    """
    by_key: dict[tuple, list[Config]] = {}
    for c in configs:
        by_key.setdefault(c.shape_key, []).append(c)
    chunks = []
    for key in sorted(by_key, key=repr):
        group = sorted(by_key[key], key=lambda c: (c.activation_key, c.hash))
        chunks += [group[i:i + chunk_size] for i in range(0, len(group), chunk_size)]
    return chunks


# ------------------------------------------------------------------------------------------ reference
class _Builtin(nn.Module):
    def __init__(self, spec: ActivationSpec, p: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.p = spec, p

    def forward(self, x: Tensor) -> Tensor:
        return self.spec.builtin(x, self.p)  # type: ignore[misc]


class _Analytic(nn.Module):
    def __init__(self, spec: ActivationSpec, p: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.p = spec, p

    def forward(self, x: Tensor) -> Tensor:
        return act_apply(self.spec, x, training=False, **self.p)


def reference_model(config: Config, in_features: int, n_classes: int, *, builtin: bool = False,
                    dtype: torch.dtype = torch.float32) -> MLP:
    """The configuration as the lab's :class:`~actlab.lab.models.MLP` (:func:`lab_model`), from
    :func:`init_params`, set to train as the engine does.

    Each fixed activation module becomes the catalog's op in its deterministic form (RReLU at its
    mean slope, as the engine trains it) or, with ``builtin``, torch's own op where it has one (the
    baseline of ``benchmarks/sweep.py``); a learnable one (PReLU) keeps the lab's module, its
    initial value set in ``dtype`` itself (it is made in float32).
    """
    spec = get(config.activation)
    p = dict(spec.resolve(**dict(config.activation_params)))
    model = lab_model(config, in_features, n_classes, init_params(config, in_features, n_classes, dtype), dtype=dtype)
    for i, m in enumerate(model.net):
        if not isinstance(m, Activation):
            continue
        if spec.learnable:  # an nn.Parameter the optimiser trains
            with torch.no_grad():
                for n in spec.learnable:
                    getattr(m, n).fill_(float(p[n]))
        else:
            model.net[i] = (_Builtin(spec, {**p, "training": False}) if builtin and spec.builtin is not None
                            else _Analytic(spec, p))
    return model


def train_reference(config: Config, *, builtin: bool = False, dtype: torch.dtype = torch.float32,
                    data: Dataset | None = None) -> tuple[Tensor, MLP]:
    """Train one configuration alone with the lab's trainer: :func:`actlab.lab.train.train` on
    :func:`reference_model` with :meth:`Config.train_config` (``torch.optim`` and autograd).

    Returns:
        ``(losses, model)``: every step's batch loss ``(steps,)`` and the trained model (the
        lab's trainer stops at a NaN/Inf loss, so a diverging run returns the steps up to it).
    """
    data = data or load_data(config.data, config.preprocess, config.n, dtype)
    model = reference_model(config, data.in_features, data.n_classes, builtin=builtin, dtype=dtype)
    result = lab_train(model, data, config.train_config())
    return torch.tensor(result.losses, dtype=dtype), model
