"""Training for the lab: seeded, deterministic, and a diverging run is a result, not a crash.

:func:`train` runs a model on a :class:`~actlab.lab.data.Dataset` with plain index batching
(:class:`EpochBatches`: a fresh seeded permutation each epoch; no DataLoader), keeps every step's loss on the device and
syncs only to check for divergence every ``check_every`` steps and at evaluations.  A NaN or
Inf loss stops the run and is reported as ``diverged_at``; a target metric stops it early.

Example::

    >>> from actlab.lab import MLP, load_dataset, train, TrainConfig
    >>> data = load_dataset("moons", n=400)
    >>> model = MLP(2, 2, depth=2, width=32, activation="relu")
    >>> r = train(model, data, TrainConfig(optimiser="adam", lr=0.01, steps=300, target_metric="train_error<=0.05"))
    >>> r.steps_to_target is not None, r.diverged
    (True, False)
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from actlab._threads import torch_threads
from actlab.lab.data import Dataset

LOSSES = {"ce": "cross-entropy on logits (multi-class)", "bce": "binary cross-entropy with logits",
          "mse": "mean squared error (one-hot targets for classification)", "auto": "ce for classes, mse for values"}
OPTIMISERS = {"sgd": "plain SGD", "momentum": "SGD with (heavy-ball or Nesterov) momentum", "adam": "Adam"}
METRICS = ("train_loss", "test_loss", "train_error", "test_error")
"""What a run measures on whole splits, in the one vocabulary of the lab and the sweep engine:
losses and error rates (an accuracy is ``1 - error``; lower is better for every metric)."""
_TARGET_RE = re.compile(r"^\s*(\w+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


class TrainError(ValueError):
    """Bad training option; the message names the value and the choices."""


@dataclass
class TrainConfig:
    """How to train.

    Args:
        loss: ``"ce"``, ``"bce"``, ``"mse"`` or ``"auto"`` (ce for classes, mse for values).
        optimiser: ``"sgd"``, ``"momentum"`` or ``"adam"``.  Default: ``"sgd"``
        lr: learning rate.  Default: ``0.1``
        momentum: for ``"momentum"``.  Default: ``0.9``
        nesterov: Nesterov momentum.  Default: ``False``
        betas: Adam's betas.  Default: ``(0.9, 0.999)``
        weight_decay: L2 penalty.  Default: ``0.0``
        batch_size: examples per step; ``None`` (or >= the training set) is full batch.  Batches
            follow :class:`EpochBatches`.  Default: ``64``
        steps: optimiser steps; if ``None``, ``epochs`` passes over the data; if both are
            ``None``, 1000 steps.
        epochs: passes over the training set (may be fractional).
        seed: seeds shuffling, dropout and any other randomness in training.  Default: ``0``
        target_metric: stop when a metric reaches a target: ``"train_error<=0.05"``, or a name
            from :data:`METRICS` with ``target`` (stops at <=).
        target: the value for a bare ``target_metric`` name.
        eval_every: steps between evaluations (also at step 0 and the end); the target is
            checked there, so it sets the resolution of ``steps_to_target``.  Default: ``100``
        eval_train_max: evaluate the training metrics on at most this many training examples
            (a fixed seeded subset).  Default: ``10000``
        eval_batch_size: chunk size for evaluation.  Default: ``4096``
        check_every: steps between divergence checks (one host sync each).  Default: ``25``
        clip_grad_norm: clip the global gradient norm to this (RNNs).  Default: ``None``
        device: ``"cpu"`` (or a torch device string).  Default: ``"cpu"``
        threads: torch's intra-op threads during the run (restored after); ``1`` is much faster
            for small nets on a busy machine, where 2+ threads spin against other processes.
            Default: ``None`` (leave torch's setting)
    """

    loss: str = "auto"
    optimiser: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int | None = 64
    steps: int | None = None
    epochs: float | None = None
    seed: int = 0
    target_metric: str | None = None
    target: float | None = None
    eval_every: int = 100
    eval_train_max: int | None = 10_000
    eval_batch_size: int = 4096
    check_every: int = 25
    clip_grad_norm: float | None = None
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise TrainError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.optimiser not in OPTIMISERS:
            raise TrainError(f"unknown optimiser {self.optimiser!r}; valid: {', '.join(OPTIMISERS)}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError(f"lr must be a positive number, got {self.lr!r}")
        if self.batch_size is not None and int(self.batch_size) < 0:
            raise TrainError(f"batch_size must be positive or None (full batch), got {self.batch_size!r}")
        if self.steps is not None and int(self.steps) < 0:
            raise TrainError(f"steps must be >= 0, got {self.steps!r}")
        if self.epochs is not None and not float(self.epochs) > 0:
            raise TrainError(f"epochs must be > 0, got {self.epochs!r}")
        for name in ("eval_every", "check_every", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise TrainError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        self.target_rule()  # validates

    def target_rule(self) -> tuple[str, str, float] | None:
        """``(metric, op, value)`` of the early-stop target, or ``None``."""
        if self.target_metric is None:
            return None
        m = _TARGET_RE.match(self.target_metric)
        if m:
            name, op, value = m.group(1), m.group(2), float(m.group(3))
        else:
            name, value = self.target_metric.strip(), self.target
            if value is None:
                raise TrainError(f"target_metric {self.target_metric!r} needs target= (or write 'train_error<=0.05')")
            op = "<="
        if name not in METRICS:
            raise TrainError(f"unknown target metric {name!r}; valid: {', '.join(METRICS)}")
        return name, op, float(value)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    """What a run measured: the one result type of :func:`train` and the sweep engine
    (:func:`actlab.sweep.engine.train_group`), one set of keys with one meaning each.

    Attributes:
        losses: the minibatch loss of every step run (NaN/Inf where it diverged), before that
            step's update, ``steps_run`` of them.
        eval_steps: optimiser steps done at each evaluation of the whole splits (0 = before
            training).  :func:`train` evaluates every ``eval_every`` steps and at the end; the
            engine after the record steps whose whole-set metrics its ``Record`` asks for, and
            at the end.
        train_loss, test_loss, train_error, test_error: per evaluation (NaN where not measured
            there: errors for regression, a metric the engine's ``Record`` did not ask for, the
            end of a diverged engine model, whose weights are zeroed).
        steps_to_target: optimiser steps done at the first evaluation where the target held
            (:attr:`TrainConfig.target_metric`; the engine: ``Record.target_error`` on the
            training error), 0 when it held before training; ``None``: never, or no target.
        diverged: a loss went NaN or Inf; ``diverged_at`` is the first such step.
        steps_run: optimiser steps taken (the engine: up to and including ``diverged_at``).
        stop_reason: ``"steps"``, ``"target"``, ``"diverged"`` or ``"callback"``.
        final: the metrics after training: ``step`` and the four above at the last
            evaluation; the engine adds the end-of-run statistics its ``Record`` asked for
            (``last_batch_loss``, ``steps_to_batch_loss``: the first step whose minibatch loss is
            <= ``Record.target_loss``, ``inactive``, ``saturated``, ``dead_on_data``,
            ``off_units`` and their ``_init`` values, ``learned`` and ``learned_curve``).
        wall_time: seconds the run took (the engine: its group's time over its models).
        config: what was run: :func:`train`'s :class:`TrainConfig` as a dict with the resolved
            loss; the engine's :class:`~actlab.sweep.spec.Config` (whose ``train_config()`` is
            that TrainConfig).
        records, layers: the engine's statistics on its record steps, per model and per (step,
            layer) (empty from :func:`train`: attach a :class:`~actlab.probe.Probe` instead).
        params_init, params: the engine's initial and trained ``(weight (out, in), bias)`` per
            layer with ``Record(keep_params=True)`` (``None`` from :func:`train`: the model holds them).
    """

    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_error: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    steps_to_target: int | None = None
    diverged: bool = False
    diverged_at: int | None = None
    steps_run: int = 0
    stop_reason: str = "steps"
    final: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    config: Any = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    params_init: list[tuple[Tensor, Tensor]] | None = None
    params: list[tuple[Tensor, Tensor]] | None = None

    @property
    def status(self) -> str:
        """``"diverged"`` or ``"done"``."""
        return "diverged" if self.diverged else "done"

    @property
    def evals(self) -> list[dict[str, float]]:
        """The evaluations as rows ``{"step": ..., "train_loss": ..., ...}``."""
        return [{"step": s, **{m: getattr(self, m)[i] for m in METRICS}} for i, s in enumerate(self.eval_steps)]

    def curve(self, metric: str) -> list[tuple[int, float]]:
        """``[(steps done, value), ...]`` of one of :data:`METRICS` where it was measured."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        return [(s, v) for s, v in zip(self.eval_steps, getattr(self, metric)) if not math.isnan(v)]

    @property
    def reached_target(self) -> bool:
        return self.steps_to_target is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN/Inf become ``None``; tensors lists; the config a dict)."""
        def clean(v: Any) -> Any:
            if isinstance(v, float):
                return v if math.isfinite(v) else None
            if isinstance(v, Tensor):
                return clean(v.tolist())
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if hasattr(d["config"], "to_dict"):
            d["config"] = d["config"].to_dict()
        return clean(d)

    def summary(self) -> str:
        if self.diverged:
            return f"diverged at step {self.diverged_at}"
        f = self.final
        err = f.get("train_error", math.nan)
        part = f"train error {err:.4f}, test error {f.get('test_error', math.nan):.4f}" if not math.isnan(err) else \
            f"train loss {f.get('train_loss', math.nan):.4g}, test loss {f.get('test_loss', math.nan):.4g}"
        tgt = "" if self.steps_to_target is None else f"; target reached at step {self.steps_to_target}"
        return f"{self.steps_run} steps: {part}{tgt} ({self.wall_time:.2f} s)"


class Callback:
    """Hooks into :func:`train`; override what you need.  A plain callable passed as a callback
    is treated as ``on_eval``.  ``on_eval`` returning ``True`` stops the run."""

    def on_start(self, model: nn.Module, config: TrainConfig) -> None: ...

    def on_after_backward(self, step: int, model: nn.Module, loss: Tensor) -> None:
        """Gradients of this step are in ``p.grad`` (the optimiser has not stepped yet)."""

    def on_step_end(self, step: int, model: nn.Module, loss: Tensor) -> None:
        """After the optimiser step; ``step`` counts from 0."""

    def on_eval(self, step: int, model: nn.Module, metrics: dict[str, float]) -> bool | None: ...

    def on_end(self, model: nn.Module, result: TrainResult) -> None: ...


class _FnCallback(Callback):
    def __init__(self, fn: Callable[[int, nn.Module, dict[str, float]], bool | None]) -> None:
        self.fn = fn

    def on_eval(self, step: int, model: nn.Module, metrics: dict[str, float]) -> bool | None:
        return self.fn(step, model, metrics)


def _overridden(cbs: list[Callback], name: str) -> list[Callback]:
    return [c for c in cbs if getattr(type(c), name) is not getattr(Callback, name)]


class EpochBatches:
    """The batch order of a run, one semantics for :func:`train` and the sweep engine.

    Each epoch draws a fresh permutation of the ``n`` training examples from the run's own
    generator (``torch.Generator().manual_seed(seed)``) and cuts it into ``n // batch_size``
    batches; the remainder is dropped, so every step has ``batch_size`` examples and each
    example is seen at most once an epoch (``DataLoader(shuffle=True, drop_last=True)``).
    ``batch_size`` ``None``, 0 or >= ``n`` is full batch: every example, in order, no draw.
    Sampling without replacement is the lab's standard; the engine draws the same indices per
    model, so a run trains identically alone or in a stack.

    Args:
        n: training examples.
        batch_size: examples per step.
        seed: seeds the permutations.
    """

    def __init__(self, n: int, batch_size: int | None, seed: int) -> None:
        if n < 1:
            raise TrainError(f"no training examples to batch (n={n})")
        self.n = int(n)
        self.batch_size = self.n if not batch_size or batch_size >= n else int(batch_size)
        self.per_epoch = self.n // self.batch_size
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._pos = 0
        self._perm: Tensor | None = None

    @property
    def full(self) -> bool:
        """Whether every step is the whole training set."""
        return self.batch_size == self.n

    def next(self) -> Tensor:
        """The indices ``(batch_size,)`` of the next step's examples."""
        return self.take(1)[0]

    def take(self, steps: int) -> Tensor:
        """The indices ``(steps, batch_size)`` of the next ``steps`` steps (the same as ``steps``
        calls of :meth:`next`, cut from each epoch's permutation at once)."""
        parts, bs = [], self.batch_size
        while steps > 0:
            if self._pos == 0:
                self._perm = torch.arange(self.n) if self.full else torch.randperm(self.n, generator=self.generator)
            assert self._perm is not None
            k = min(steps, self.per_epoch - self._pos)
            parts.append(self._perm[self._pos * bs: (self._pos + k) * bs].view(k, bs))
            self._pos = (self._pos + k) % self.per_epoch
            steps -= k
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def resolve_loss(loss: str, data: Dataset) -> str:
    if loss == "auto":
        return "ce" if data.is_classification else "mse"
    if loss == "ce" and not data.is_classification:
        raise TrainError(f"loss 'ce' needs class labels; {data.name!r} has real-valued targets (use 'mse')")
    return loss


def _targets(loss: str, y: Tensor, data: Dataset, out_dim: int) -> Tensor:
    """The tensor the loss compares outputs with, built once for the whole split."""
    if loss == "ce":
        return y
    if data.is_classification:
        if out_dim == 1:
            if data.n_classes != 2:
                raise TrainError(f"a single output needs 2 classes; {data.name!r} has {data.n_classes}")
            return y.to(torch.float32).unsqueeze(-1)
        return F.one_hot(y, out_dim).to(torch.float32)
    return y.to(torch.float32)


def _loss_fn(loss: str) -> Callable[[Tensor, Tensor], Tensor]:
    if loss == "ce":
        return F.cross_entropy
    if loss == "bce":
        return F.binary_cross_entropy_with_logits
    return F.mse_loss


def _last_step(out: Tensor, target: Tensor) -> Tensor:
    # A recurrent model returning every step's output is scored on the last step.
    return out[:, -1] if out.dim() == 3 and target.dim() < 3 else out


def make_optimiser(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimiser == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    mom = config.momentum if config.optimiser == "momentum" else 0.0
    return torch.optim.SGD(params, lr=config.lr, momentum=mom, nesterov=config.nesterov and mom > 0,
                           weight_decay=config.weight_decay)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, target: Tensor, labels: Tensor | None, loss: str,
             batch_size: int = 4096) -> tuple[Tensor, Tensor]:
    """Mean loss and error rate (NaN without labels) of ``model`` on a split, as 0-d tensors."""
    fn = _loss_fn(loss)
    total = x.new_zeros((), dtype=torch.float64)
    wrong = x.new_zeros((), dtype=torch.float64)
    n = x.shape[0]
    for i in range(0, n, batch_size):
        out = _last_step(model(x[i: i + batch_size]), target)
        t = target[i: i + batch_size]
        total += fn(out, t, reduction="sum").double() / (out[0].numel() if loss != "ce" else 1)
        if labels is not None:
            pred = (out[:, 0] > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
            wrong += (pred != labels[i: i + batch_size]).sum()
    err = wrong / n if labels is not None else x.new_full((), math.nan, dtype=torch.float64)
    return total / n, err


def train(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig | None = None,
    *,
    callbacks: Iterable[Callback | Callable[..., Any]] = (),
    probe: Any = None,
) -> TrainResult:
    """Train ``model`` on ``data``; returns what was measured.

    Args:
        model: any module mapping a batch of ``data``'s inputs to outputs (logits or values).
        data: the data set (moved to ``config.device``).
        config: a :class:`TrainConfig`.  Default: ``TrainConfig()``
        callbacks: :class:`Callback` objects, or callables ``fn(step, model, metrics)`` run at
            each evaluation (return ``True`` to stop).
        probe: an object used as a context manager around the loop (``actlab.probe.Probe``);
            ``None`` for none.

    Returns:
        A :class:`TrainResult`.  A NaN / Inf loss ends the run with ``diverged=True`` and
        ``diverged_at`` set; it never raises.

    Determinism: the same model state, data and config give bit-identical losses (shuffling
    and dropout draw from ``config.seed``; torch's global RNG is restored afterwards).
    """
    cfg = config or TrainConfig()
    cbs: list[Callback] = [c if isinstance(c, Callback) else _FnCallback(c) for c in callbacks]
    loss_name = resolve_loss(cfg.loss, data)
    device = torch.device(cfg.device)
    model.to(device)
    d = data.to(device)
    n = d.n_train
    if n == 0:
        raise TrainError(f"{data.name!r} has no training examples")
    batches = EpochBatches(n, cfg.batch_size, cfg.seed)
    per_epoch = batches.per_epoch
    if cfg.steps is not None:
        total = int(cfg.steps)
    elif cfg.epochs is not None:
        total = max(1, math.ceil(float(cfg.epochs) * per_epoch))
    else:
        total = 1000
    rule = cfg.target_rule()

    with torch.no_grad():
        was_training = model.training
        model.eval()
        out_dim = _last_step(model(d.x_train[:1]), d.y_train[:1]).shape[-1]
        model.train(was_training)
    t_train = _targets(loss_name, d.y_train, d, out_dim)
    t_test = _targets(loss_name, d.y_test, d, out_dim)
    lab_train = d.y_train if d.is_classification else None
    lab_test = d.y_test if d.is_classification else None
    loss_fn = _loss_fn(loss_name)

    if cfg.eval_train_max is not None and n > cfg.eval_train_max:
        sub = torch.randperm(n, generator=torch.Generator().manual_seed(int(cfg.seed) + 1))[: cfg.eval_train_max]
        sub = sub.sort().values.to(device)
        ev_x, ev_t, ev_l = d.x_train[sub], t_train[sub], None if lab_train is None else lab_train[sub]
    else:
        ev_x, ev_t, ev_l = d.x_train, t_train, lab_train

    result = TrainResult(config={**cfg.to_dict(), "loss": loss_name})
    opt = make_optimiser(model, cfg)
    # every step's loss in the data's float type (float64 runs keep float64 losses)
    loss_dtype = d.x_train.dtype if d.x_train.is_floating_point() else torch.float32
    losses = torch.full((total,), math.nan, dtype=torch.promote_types(loss_dtype, torch.float32), device=device)
    after_bw, step_end, on_eval = (_overridden(cbs, m) for m in ("on_after_backward", "on_step_end", "on_eval"))

    def run_eval(step: int) -> bool:
        """Record metrics at ``step``; True when the run should stop (target or callback)."""
        model.eval()
        tr_loss, tr_err = evaluate(model, ev_x, ev_t, ev_l, loss_name, cfg.eval_batch_size)
        te_loss, te_err = evaluate(model, d.x_test, t_test, lab_test, loss_name, cfg.eval_batch_size)
        model.train()
        vals = torch.stack([tr_loss, te_loss, tr_err, te_err]).tolist()  # the one sync per evaluation
        m = {"train_loss": vals[0], "test_loss": vals[1], "train_error": vals[2], "test_error": vals[3]}
        result.eval_steps.append(step)
        for k, v in m.items():
            getattr(result, k).append(v)
        result.final = {"step": step, **m}
        stop = False
        if not math.isfinite(m["train_loss"]) and not result.diverged:
            result.diverged, result.diverged_at, result.stop_reason = True, step, "diverged"
            return True
        if rule is not None and result.steps_to_target is None:
            name, op, value = rule
            v = m[name]
            hit = {"<=": v <= value, "<": v < value, ">=": v >= value, ">": v > value}[op]
            if hit:
                result.steps_to_target = step
                result.stop_reason, stop = "target", True
        for c in on_eval:
            if c.on_eval(step, model, m):
                if not stop:
                    result.stop_reason = "callback"
                stop = True
        return stop

    probe_ctx = probe if probe is not None else contextlib.nullcontext()
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        done = _run(model, cfg, cbs, d, probe_ctx, run_eval, result, opt, losses, loss_fn, t_train, batches,
                    total, after_bw, step_end)
    result.wall_time = time.perf_counter() - t0
    result.steps_run = done
    result.losses = losses[:done].tolist()
    for c in cbs:
        c.on_end(model, result)
    return result


def _run(model: nn.Module, cfg: TrainConfig, cbs: list[Callback], d: Dataset, probe_ctx: Any,
         run_eval: Callable[[int], bool], result: TrainResult, opt: torch.optim.Optimizer, losses: Tensor,
         loss_fn: Callable[[Tensor, Tensor], Tensor], t_train: Tensor, batches: EpochBatches, total: int,
         after_bw: list[Callback], step_end: list[Callback]) -> int:
    """The training loop proper; returns the number of steps run."""
    device = losses.device
    done = 0
    # Fork (and restore) the RNG of the device the run draws dropout noise on, not only the CPU's.
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), probe_ctx:
        torch.manual_seed(int(cfg.seed))
        model.train()
        for c in cbs:
            c.on_start(model, cfg)
        stop = run_eval(0)
        checked = 0
        epoch, row = None, 0
        while not stop and done < total:
            if batches.full:
                xb, tb = d.x_train, t_train
            else:
                if epoch is None or row == len(epoch):
                    # a whole epoch's indices at once: one host-to-device copy (a sync) per epoch
                    epoch, row = batches.take(batches.per_epoch).to(device), 0
                idx = epoch[row]
                row += 1
                xb, tb = d.x_train[idx], t_train[idx]
            out = _last_step(model(xb), tb)
            loss = loss_fn(out, tb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for c in after_bw:
                c.on_after_backward(done, model, loss)
            if cfg.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            opt.step()
            losses[done] = loss.detach()
            for c in step_end:
                c.on_step_end(done, model, loss)
            done += 1
            is_eval = done % cfg.eval_every == 0 or done == total
            if is_eval or done % cfg.check_every == 0:
                bad = ~torch.isfinite(losses[checked:done])
                if bool(bad.any()):
                    result.diverged = True
                    result.diverged_at = checked + int(bad.nonzero()[0, 0])
                    result.stop_reason = "diverged"
                    break
                checked = done
            if is_eval:
                stop = run_eval(done)
        if result.diverged and result.eval_steps and result.eval_steps[-1] != done:
            run_eval(done)  # the state it diverged into is a result too
    return done


__all__ = ["LOSSES", "METRICS", "OPTIMISERS", "Callback", "EpochBatches", "TrainConfig", "TrainError", "TrainResult", "evaluate",
           "make_optimiser", "resolve_loss", "train"]
