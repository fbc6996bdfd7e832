"""Sweep specifications: a grid of training configurations, read from YAML, TOML or flags.

A spec names *axes*; every axis holds one value or a list of values, and the sweep is
their Cartesian product.  Example (YAML)::

    name: small
    axes:
      activation: [relu, tanh, {name: leaky_relu, negative_slope: 0.1}]
      depth: [2, 3]
      width: 64
      lr: [0.01, 0.1]
      seed: [0, 1]
    record:
      every: 20
      target_loss: 0.5

Nothing in a spec is executed: YAML is read with ``yaml.safe_load`` and every value is
validated, with an error naming the field and its valid values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from actlab.activations import ActivationError, get
from actlab.lab.data import DATASETS as LAB_DATASETS
from actlab.lab.data import PREPROCESSING
from actlab.lab.init import INIT_SCHEMES as LAB_INIT_SCHEMES
from actlab.lab.train import TrainConfig
from actlab.probe.quantities import SATURATION_TOL

OPTIMISERS = ("sgd", "momentum", "adam")
"""Optimisers the batched engine implements on stacked tensors."""

INIT_ALIASES = {"he": "he_normal", "xavier": "xavier_normal", "lecun": "lecun_normal", "torch": "torch_default"}
"""Short names of the lab's schemes, kept for existing sweep specs."""

INIT_SCHEMES = (*INIT_ALIASES, *LAB_INIT_SCHEMES)
"""Weight initialisations: the lab's schemes (:data:`actlab.lab.init.INIT_SCHEMES`, drawn by
:func:`actlab.lab.init.init_weights`) and the aliases of :data:`INIT_ALIASES` (``he`` = He
normal with the activation's leaky slope, ``xavier`` = Glorot normal, ``lecun`` = LeCun
normal, ``torch`` = nn.Linear's default)."""

INIT_ARGS = ("gain", "std", "value", "mode", "sigma_b2")
"""Keyword arguments of :func:`actlab.lab.init.init_weights` a configuration may set (``init_args``)."""

BIAS_INITS = ("zeros", "torch")
"""Named bias initialisations; a number gives a constant bias."""

DATASETS = tuple(k for k, v in LAB_DATASETS.items() if v.task == "classification")
"""The lab's classification sets (:data:`actlab.lab.data.DATASETS`): the engine trains with cross-entropy."""

BATCHES = "epoch"
"""The batch semantics of every configuration: :class:`actlab.lab.train.EpochBatches` (a fresh
permutation of the training set each epoch, the remainder dropped), the lab's.  It is part of
:meth:`Config.to_dict`, hence of every hash: results stored before it (batches drawn with
replacement) are never taken for results of today's configurations."""

DEFAULT_METRICS = ("loss", "param_grad_norm", "inactive", "saturated")
"""What the engine records by default, per model and per layer, on the record schedule, with the
probe's quantities (:mod:`actlab.probe.quantities`) on the stacked tensors:

* ``param_grad_norm``: the norm of the gradients of a layer's weights and bias together (a
  record's: of every layer's);
* ``inactive``: the share of hidden units with ``f'(z) = 0`` on every example of the step's batch
  (a record's: the mean over hidden layers);
* ``saturated``: the share of (example, unit) with ``|f'(z)| < saturation_tol * max|f'|``.
"""

METRICS = (*DEFAULT_METRICS, "weight_grad_norm", "train_loss", "train_error", "test_loss", "test_error",
           "unit_states")
"""Every metric the engine can record.  Beyond the defaults:

* ``weight_grad_norm``: the norm of the gradients of a layer's weight matrix alone, no bias (a
  record's: of every layer's): what mean-field theory predicts;
* ``train_loss``, ``train_error``: mean cross-entropy and error rate on the whole training set,
  before training and after each record step's update (``steps_to_target`` reads the error);
* ``test_loss``, ``test_error``: the same on the test set;
* ``unit_states``: the fractions of hidden units dead on the data (``f'(z) = 0`` for every
  training example; ``final["dead_on_data"]``, ``final["dead_on_data_init"]``) and off
  (``z <= 0`` for every example; ``final["off_units"]``...) on the whole training set, at init
  and at the end.
"""


class SpecError(ValueError):
    """A bad sweep spec; the message names the field, the bad value and the valid values."""


class SpecTooLarge(SpecError):
    """A spec holds more configurations than the caller allowed (``size`` and ``limit`` say how many)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the spec holds {size} configurations, more than {limit}")
        self.size, self.limit = size, limit


@dataclass(frozen=True)
class Config:
    """One training configuration: an MLP on a dataset, trained for ``steps`` steps.

    Args:
        activation: canonical catalog name of the hidden activation.
        activation_params: its hyperparameters, resolved (defaults filled in).
        depth: number of hidden layers (>= 1).
        width: units per hidden layer.
        init: weight initialisation, one of :data:`INIT_SCHEMES`.
        init_args: keyword arguments of :func:`actlab.lab.init.init_weights` (:data:`INIT_ARGS`):
            ``gain`` (a number or ``"auto"``: each layer's activation gain), ``std`` of ``normal``,
            ``value`` of ``constant``, ``mode`` of He, ``sigma_b2`` of ``critical``.  Default: none
        bias_init: a constant, or one of :data:`BIAS_INITS`.
        lr: learning rate (> 0).
        optimiser: one of :data:`OPTIMISERS`.
        momentum: momentum of ``"momentum"`` (heavy ball) and beta1 of ``"adam"``.
        data: dataset name.
        preprocess: input preprocessing.
        n: number of samples to draw for synthetic datasets (``None``: the dataset's default).
        seed: seeds the initial weights and the batch order.
        steps: optimiser steps.
        batch_size: samples per step, in the lab's batch order (:data:`BATCHES`); at least the
            training set is full batch.

    The training part is the lab's :class:`~actlab.lab.train.TrainConfig`
    (:meth:`train_config`): the engine trains exactly what :func:`actlab.lab.train.train`
    trains with it, on :func:`actlab.sweep.engine.lab_model` from the same initial weights.
    One exception: RReLU, whose training forward draws random slopes, trains in the engine at
    its mean slope (its eval form, deterministic per seed), as leaky ReLU at that slope.
    """

    activation: str = "relu"
    activation_params: Mapping[str, Any] = field(default_factory=dict)
    depth: int = 3
    width: int = 64
    init: str = "he"
    init_args: Mapping[str, Any] = field(default_factory=dict)
    bias_init: float | str = 0.0
    lr: float = 0.1
    optimiser: str = "sgd"
    momentum: float = 0.9
    data: str = "digits"
    preprocess: str = "standardise"
    n: int | None = None
    seed: int = 0
    steps: int = 200
    batch_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["activation_params"] = dict(sorted(dict(self.activation_params).items()))
        d["init_args"] = dict(sorted(dict(self.init_args).items()))
        if not d["init_args"]:  # absent, so configs written before it keep their hash
            del d["init_args"]
        d["batches"] = BATCHES
        return d

    def train_config(self) -> TrainConfig:
        """How this configuration trains, as the lab's :class:`~actlab.lab.train.TrainConfig`:
        cross-entropy, ``optimiser`` with ``lr``, ``momentum`` (heavy ball; Adam's beta1, beta2
        at the lab's default), ``batch_size``, ``steps`` and ``seed`` (the batch order).
        Evaluated before and after training only."""
        beta2 = TrainConfig.betas[1]
        return TrainConfig(loss="ce", optimiser=self.optimiser, lr=self.lr, momentum=self.momentum,
                           betas=(self.momentum, beta2), batch_size=self.batch_size, steps=self.steps,
                           seed=self.seed, eval_every=self.steps)

    @property
    def hash(self) -> str:
        """Stable id: sha256 of the canonical JSON of :meth:`to_dict` (first 16 hex digits)."""
        return _digest(self.to_dict())

    @property
    def shape_key(self) -> tuple:
        """Configurations with equal keys can be trained as one stacked computation."""
        return (self.depth, self.width, self.data, self.preprocess, self.n, self.steps, self.batch_size,
                self.optimiser, _pieces(self))

    @property
    def activation_key(self) -> tuple:
        return (self.activation, tuple(sorted(dict(self.activation_params).items())))

    @property
    def label(self) -> str:
        p = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(dict(self.activation_params).items()))
        return f"{self.activation}({p})" if p else self.activation

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        d = dict(d)
        d.pop("batches", None)  # written by to_dict: not a field, one semantics (BATCHES)
        return validate_config(d)


def _pieces(c: Config) -> int:
    return get(c.activation).group_size(dict(c.activation_params))


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


AXES: tuple[str, ...] = tuple(f.name for f in fields(Config) if f.name != "activation_params")
# (an ``init_args`` axis takes mappings: ``init_args: [{gain: auto}, {gain: 2.0}]``)
"""Valid axis names (``activation`` entries carry their own hyperparameters)."""


@dataclass(frozen=True)
class Record:
    """What to record, and when.

    Args:
        every: record per-model statistics every ``every`` steps (and at the last step).
        first: the first record step (0-based; the metrics measured after a step's update, such
            as ``train_error``, then fall after ``first + 1``, ``first + 1 + every``, ... steps:
            ``first = every - 1`` puts them at multiples of ``every``).  Default: ``0``
        metrics: a subset of :data:`METRICS`.  Default: :data:`DEFAULT_METRICS`
        target_loss: ``final["steps_to_batch_loss"]`` is the first step whose batch loss is <= this.
        target_error: with the ``train_error`` metric, ``steps_to_target`` is the number of steps
            done at the first evaluation (0, then after each record step) whose training error is
            <= this, the meaning it has in :func:`actlab.lab.train.train` (``None``: no target).
        keep_params: return each model's initial and trained weights
            (:attr:`TrainResult.params_init`, :attr:`TrainResult.params`).
        saturation_tol: an (example, unit) is saturated where ``|f'(z)| < saturation_tol * max|f'|``
            (the probe's rule). Default: :data:`~actlab.probe.quantities.SATURATION_TOL`
    """

    every: int = 20
    first: int = 0
    metrics: tuple[str, ...] = DEFAULT_METRICS
    target_loss: float = 0.5
    saturation_tol: float = SATURATION_TOL
    target_error: float | None = None
    keep_params: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "metrics": list(self.metrics)}
        # Fields added later are left out at their defaults, so older specs keep their hash.
        if d["target_error"] is None:
            del d["target_error"]
        if d["first"] == 0:
            del d["first"]
        if not d["keep_params"]:
            del d["keep_params"]
        return d


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its name, the axes and what to record."""

    name: str
    axes: Mapping[str, tuple[Any, ...]]
    record: Record = Record()

    def configs(self) -> list[Config]:
        """The Cartesian product of the axes, in a stable order (axes in :data:`AXES` order)."""
        keys = [a for a in AXES if a in self.axes]
        out: list[Config] = []
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            d: dict[str, Any] = dict(zip(keys, combo))
            act = d.pop("activation", "relu")
            if isinstance(act, Mapping):
                act = dict(act)
                d["activation"] = act.pop("name")
                d["activation_params"] = act
            else:
                d["activation"] = act
            out.append(validate_config(d))
        return out

    @property
    def size(self) -> int:
        """How many configurations the spec holds (without expanding them)."""
        return math.prod(len(v) for v in self.axes.values())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "axes": {k: list(v) for k, v in self.axes.items()},
                "record": self.record.to_dict()}

    @property
    def hash(self) -> str:
        """sha256 over the configurations' hashes and the record settings."""
        return _digest({"configs": [c.hash for c in self.configs()],
                        "record": self.to_dict()["record"]})


# ------------------------------------------------------------------------------------------ validation
INT_RANGES = {"depth": (1, 1000), "width": (1, 16384), "steps": (1, 10**8), "batch_size": (1, 10**6),
              "seed": (0, 2**63 - 1)}
"""Integer axes: the lowest and highest value a spec may ask for (beyond them a run would not
finish, or not fit in memory; torch seeds are 64-bit)."""
MAX_MODEL_WEIGHTS = 1 << 28
"""depth x width^2 above this (1 GiB of float32 weights per model) is refused before any work."""


def _choice(field_: str, value: Any, valid: Iterable[str]) -> str:
    valid = tuple(valid)
    v = str(value).strip().lower()
    if v not in valid:
        raise SpecError(f"{field_}: unknown value {value!r}; valid values: {', '.join(valid)}")
    return v


def _int(field_: str, value: Any, low: int, high: int | None = None) -> int:
    rng = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise SpecError(f"{field_}: must be an integer {rng}, got {value!r}")
    if int(value) < low or (high is not None and int(value) > high):
        raise SpecError(f"{field_}: must be an integer {rng}, got {value!r}")
    return int(value)


def _float(field_: str, value: Any, *, low: float | None = None, positive: bool = False,
           high: float | None = None) -> float:
    if isinstance(value, bool):
        raise SpecError(f"{field_}: must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{field_}: must be a number, got {value!r}") from None
    if not math.isfinite(v) or (positive and v <= 0) or (low is not None and v < low) or (
            high is not None and v >= high):
        rng = "> 0" if positive else f"in [{low}, {high})" if high is not None else f">= {low}"
        raise SpecError(f"{field_}: must be a finite number {rng}, got {value!r}")
    return v


def validate_config(d: dict[str, Any]) -> Config:
    """Build a :class:`Config` from plain values, raising :class:`SpecError` naming the bad field."""
    unknown = sorted(set(d) - {f.name for f in fields(Config)})
    if unknown:
        raise SpecError(f"unknown axis {unknown[0]!r}; valid axes: {', '.join(AXES)}")
    out: dict[str, Any] = {}
    try:
        spec = get(d.get("activation", "relu"))
    except ActivationError as e:
        raise SpecError(f"activation: {e}") from None
    try:
        params = dict(spec.resolve(**dict(d.get("activation_params") or {})))
    except ActivationError as e:
        raise SpecError(f"activation: {e}") from None
    out["activation"], out["activation_params"] = spec.name, params
    for name, (low, high) in INT_RANGES.items():
        if name in d:
            out[name] = _int(name, d[name], low, high)
    depth, width = out.get("depth", 3), out.get("width", 64)
    if depth * width * width > MAX_MODEL_WEIGHTS:
        raise SpecError(f"depth {depth} x width {width}: a model of ~{depth * width * width:.2g} weights, more than "
                        f"the {MAX_MODEL_WEIGHTS:.2g} (1 GiB of float32) a sweep model may hold")
    if d.get("n") is not None:
        out["n"] = _int("n", d["n"], 2)
    if "lr" in d:
        out["lr"] = _float("lr", d["lr"], positive=True)
    if "momentum" in d:
        out["momentum"] = _float("momentum", d["momentum"], low=0.0, high=1.0)
    if "init" in d:
        out["init"] = _choice("init", d["init"], INIT_SCHEMES)
    if d.get("init_args"):
        out["init_args"] = _init_args(d["init_args"])
    if out.get("init", "he") == "constant" and "value" not in out.get("init_args", {}):
        raise SpecError("init: 'constant' needs init_args {value: ...} (the weight of every connection)")
    if "bias_init" in d:
        b = d["bias_init"]
        out["bias_init"] = (_choice("bias_init", b, BIAS_INITS) if isinstance(b, str)
                            else _float("bias_init", b))
    if "optimiser" in d:
        out["optimiser"] = _choice("optimiser", d["optimiser"], OPTIMISERS)
    if "data" in d:
        out["data"] = _choice("data", d["data"], DATASETS)
    if "preprocess" in d:
        out["preprocess"] = _choice("preprocess", d["preprocess"], PREPROCESSING)
    return Config(**out)


def _init_args(a: Any) -> dict[str, Any]:
    if not isinstance(a, Mapping):
        raise SpecError(f"init_args: must be a mapping with keys among {', '.join(INIT_ARGS)}, got {a!r}")
    out: dict[str, Any] = {}
    for k, v in a.items():
        if k not in INIT_ARGS:
            raise SpecError(f"init_args: unknown key {k!r}; valid keys: {', '.join(INIT_ARGS)}")
        if k == "gain":
            if isinstance(v, str) and v.strip().lower() != "auto":
                raise SpecError(f"init_args.gain: must be a number > 0 or 'auto', got {v!r}")
            out[k] = "auto" if isinstance(v, str) else _float("init_args.gain", v, positive=True)
        elif k == "mode":
            out[k] = _choice("init_args.mode", v, ("fan_in", "fan_out"))
        elif k == "value":
            out[k] = _float("init_args.value", v)
        else:
            out[k] = _float(f"init_args.{k}", v, low=0.0)
    return dict(sorted(out.items()))


def parse_spec(obj: Mapping[str, Any], *, default_name: str = "sweep", max_configs: int | None = None) -> SweepSpec:
    """Validate a spec given as plain data (the parsed YAML/TOML).

    Args:
        obj: the spec.
        default_name: its name when it has none.
        max_configs: raise :class:`SpecTooLarge` rather than expand more configurations than this
            (expanding and validating 10^6 of them takes minutes).
    """
    if not isinstance(obj, Mapping):
        raise SpecError(f"a sweep spec must be a mapping with 'axes', got {type(obj).__name__}")
    top = {"name", "axes", "record"}
    bad = sorted(set(obj) - top)
    if bad:
        raise SpecError(f"unknown top-level field {bad[0]!r}; valid fields: {', '.join(sorted(top))}")
    axes_in = obj.get("axes") or {}
    if not isinstance(axes_in, Mapping):
        raise SpecError("axes: must be a mapping of axis name to a value or a list of values")
    axes: dict[str, tuple[Any, ...]] = {}
    for k, v in axes_in.items():
        if k not in AXES:
            raise SpecError(f"unknown axis {k!r}; valid axes: {', '.join(AXES)}")
        vals = tuple(v) if isinstance(v, (list, tuple)) else (v,)
        if not vals:
            raise SpecError(f"{k}: the list of values is empty")
        if k == "activation":
            vals = tuple(_activation_entry(x) for x in vals)
        axes[k] = vals
    rec_in = dict(obj.get("record") or {})
    rec_fields = {f.name for f in fields(Record)}
    bad = sorted(set(rec_in) - rec_fields)
    if bad:
        raise SpecError(f"record: unknown field {bad[0]!r}; valid fields: {', '.join(sorted(rec_fields))}")
    rec: dict[str, Any] = {}
    if "every" in rec_in:
        rec["every"] = _int("record.every", rec_in["every"], 1)
    if "metrics" in rec_in:
        ms = rec_in["metrics"]
        ms = [ms] if isinstance(ms, str) else list(ms)
        rec["metrics"] = tuple(_choice("record.metrics", m, METRICS) for m in ms)
    if "target_loss" in rec_in:
        rec["target_loss"] = _float("record.target_loss", rec_in["target_loss"], low=0.0)
    if "first" in rec_in:
        rec["first"] = _int("record.first", rec_in["first"], 0)
    if rec_in.get("target_error") is not None:
        rec["target_error"] = _float("record.target_error", rec_in["target_error"], low=0.0)
    if "saturation_tol" in rec_in:
        rec["saturation_tol"] = _float("record.saturation_tol", rec_in["saturation_tol"], low=0.0, high=1.0)
    spec = SweepSpec(name=str(obj.get("name") or default_name), axes=axes, record=Record(**rec))
    if max_configs is not None and spec.size > max_configs:
        raise SpecTooLarge(spec.size, max_configs)
    spec.configs()  # validate every combination now, not mid-run
    return spec


def _activation_entry(x: Any) -> Any:
    """``"relu"`` or ``{name: leaky_relu, negative_slope: 0.1}`` -> canonical, validated form."""
    if isinstance(x, Mapping):
        if "name" not in x:
            raise SpecError(f"activation: a mapping entry needs 'name', got {dict(x)!r}")
        params = {k: v for k, v in x.items() if k != "name"}
        try:
            spec = get(x["name"])
            spec.resolve(**params)
        except ActivationError as e:
            raise SpecError(f"activation: {e}") from None
        return {"name": spec.name, **params}
    try:
        return get(str(x)).name
    except ActivationError as e:
        raise SpecError(f"activation: {e}") from None


def load_spec(path: str | Path, *, max_configs: int | None = None, **overrides: Any) -> SweepSpec:
    """Read a spec from a ``.yaml``/``.yml`` (``yaml.safe_load``) or ``.toml`` (``tomllib``) file.

    ``overrides`` replace (or add) axes, in the form :func:`spec_from_flags` takes.  A file with
    no axes (and no overrides) is an error: it would silently train one default configuration.
    """
    obj = read_spec_file(path)
    if overrides:
        obj = dict(obj)
        obj["axes"] = {**dict(obj.get("axes") or {}), **_flag_axes(overrides)}
    if isinstance(obj, Mapping) and not obj.get("axes"):
        raise SpecError(f"spec file {Path(path).name!r} has no axes: nothing to sweep "
                        "(see examples/sweep_small.yaml)")
    return parse_spec(obj, default_name=Path(path).stem, max_configs=max_configs)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The spec file as plain data (YAML through ``yaml.safe_load``; TOML through ``tomllib``)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec file not found: {str(p)!r}")
    text = p.read_text()
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                raise SpecError("TOML specs need Python >= 3.11 (tomllib); use YAML") from None
            obj = tomllib.loads(text)
        elif suffix in (".yaml", ".yml", ".json"):
            import yaml

            obj = yaml.safe_load(text)
        else:
            raise SpecError(f"spec file {p.name!r}: unknown format; valid suffixes: .yaml, .yml, .toml, .json")
    except SpecError:
        raise
    except Exception as e:  # a parser error: say where, no traceback
        raise SpecError(f"spec file {p.name!r} does not parse: {e}") from None
    return obj or {}


def _flag_axes(axes: Mapping[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for k, v in axes.items():
        if v is None:
            continue
        items = [s.strip() for s in str(v).split(",") if s.strip()] if isinstance(v, str) else v
        parsed[k] = [_number(x) for x in items] if isinstance(items, list) else items
    return parsed


def parse_axis_flags(flags: Iterable[str]) -> dict[str, str]:
    """``["lr=0.1,0.01", "activation=relu,tanh"]`` -> ``{"lr": "0.1,0.01", ...}`` (CLI ``--axis``)."""
    from actlab._kv import PairError, parse_pairs

    try:
        return parse_pairs(flags, option="--axis", form="NAME=V1,V2,...", hint=f"valid names: {', '.join(AXES)}")
    except PairError as e:
        raise SpecError(str(e)) from None


def spec_from_flags(name: str = "flags", *, max_configs: int | None = None, **axes: Any) -> SweepSpec:
    """A spec from CLI-style values: ``spec_from_flags(activation="relu,tanh", lr="0.1,0.01")``."""
    return parse_spec({"name": name, "axes": _flag_axes(axes)}, max_configs=max_configs)


def _number(s: Any) -> Any:
    if not isinstance(s, str):
        return s
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s
