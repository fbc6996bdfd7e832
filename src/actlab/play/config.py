"""The playground's setup: one table of every control, its type, range and choices.

Everything the browser can set is a field of :class:`PlayConfig`; :func:`parse_config` checks a
mapping from the browser (or the URL) against :data:`FIELDS` the way the CLI checks its options:
an unknown key, a wrong type, a value out of range or not among the choices is rejected with one
line naming the bad value and the valid ones.  Choices come from the registries (activations,
initialisations, optimisers, data sets), so a new catalog entry appears in the playground
without an edit here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from actlab.activations import names as activation_names
from actlab.lab.data import DATASETS, SYNTHETIC_NOISE, is_available
from actlab.lab.init import INIT_SCHEMES
from actlab.lab.train import OPTIMISERS


class PlayError(ValueError):
    """A bad control value or message from the browser; the text names the value and the choices."""


# The playground's feature options -> the lab's preprocessing names (one name per concept in the lab).
FEATURES: dict[str, str] = {"raw": "none", "centred": "centre", "standardised": "standardise"}
SHARED_FIELDS: tuple[str, ...] = ("data", "noise", "train_pct", "features", "seed")  # A and B compare on one data set
PLANE_SETS: tuple[str, ...] = tuple(SYNTHETIC_NOISE)  # the 2-D sets: decision surface + unit thumbnails
IMAGE_SETS: tuple[str, ...] = ("digits", "mnist", "fashion_mnist")  # predictions on sample images


def data_choices() -> tuple[str, ...]:
    """The data sets offered: every 2-D set and the image sets whose files are present."""
    have = [n for n in IMAGE_SETS if n in DATASETS and (DATASETS[n].ships or is_available(n))]
    return PLANE_SETS + tuple(have)


@dataclass(frozen=True)
class Field:
    """One control: its kind (``"choice"``, ``"int"``, ``"float"``), range or choices, and help."""

    kind: str
    low: float = -math.inf
    high: float = math.inf
    choices: tuple[str, ...] = ()
    optional: bool = False  # may be null (``sigma_w2``: "the scheme's own")
    help: str = ""


def _fields() -> dict[str, Field]:
    return {
        "data": Field("choice", choices=data_choices(), help="data set"),
        "noise": Field("float", 0.0, 2.0, optional=True, help="std of the 2-D sets' jitter (null: the set's own)"),
        "train_pct": Field("int", 10, 90, help="share of the points used for training, in percent"),
        "features": Field("choice", choices=tuple(FEATURES), help="input features"),
        "depth": Field("int", 1, 20, help="hidden layers"),
        "width": Field("int", 1, 256, help="units per hidden layer"),
        "activation": Field("choice", choices=tuple(activation_names()), help="hidden activation"),
        "init": Field("choice", choices=tuple(INIT_SCHEMES), help="weight initialisation"),
        "sigma_w2": Field("float", 0.01, 10.0, optional=True,
                          help="weights N(0, sigma_w^2 / fan_in), overriding the scheme (null: the scheme's own)"),
        "lr": Field("float", 1e-5, 10.0, help="learning rate"),
        "batch_size": Field("int", 1, 4096, help="examples per step"),
        "optimiser": Field("choice", choices=tuple(OPTIMISERS), help="optimiser"),
        "weight_decay": Field("float", 0.0, 1.0, help="L2 regularisation (weight decay)"),
        "dropout": Field("float", 0.0, 0.9, help="dropout after each hidden activation"),
        "seed": Field("int", 0, 2**31 - 1, help="seed of data, init and batches"),
    }


@dataclass(frozen=True)
class PlayConfig:
    """One network and how it trains; the defaults are the playground's opening setup."""

    data: str = "circles"
    noise: float | None = None
    train_pct: int = 50
    features: str = "standardised"
    depth: int = 4
    width: int = 8
    activation: str = "tanh"
    init: str = "xavier_normal"
    sigma_w2: float | None = None
    lr: float = 0.03
    batch_size: int = 16
    optimiser: str = "sgd"
    weight_decay: float = 0.0
    dropout: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def plane(self) -> bool:
        """2-D data: the decision surface and unit thumbnails can be drawn."""
        return self.data in PLANE_SETS


def _check(name: str, f: Field, v: Any) -> Any:
    if v is None:
        if f.optional:
            return None
        raise PlayError(f"{name} must not be null")
    if f.kind == "choice":
        if not isinstance(v, str) or v not in f.choices:
            raise PlayError(f"unknown {name} {v!r}; valid: {', '.join(f.choices)}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlayError(f"{name} must be a number ({f.help}), got {v!r}")
    if f.kind == "int":
        if isinstance(v, float) and not v.is_integer():
            raise PlayError(f"{name} must be a whole number ({f.help}), got {v!r}")
        v = int(v)
    else:
        v = float(v)
    if not (math.isfinite(v) and f.low <= v <= f.high):
        raise PlayError(f"{name} must be in [{f.low:g}, {f.high:g}] ({f.help}), got {v!r}")
    return v


def parse_config(raw: Any, base: PlayConfig | None = None) -> PlayConfig:
    """A :class:`PlayConfig` from a mapping (a JSON object from the browser), every value checked.

    Args:
        raw: ``{"activation": "relu", "depth": 10, ...}``; keys left out keep ``base``'s value.
        base: the setup to start from.  Default: :class:`PlayConfig()`

    Raises:
        PlayError: ``raw`` is not a mapping, has an unknown key, or a bad value (the message names it).
    """
    if not isinstance(raw, Mapping):
        raise PlayError(f"config must be an object of control values, got {type(raw).__name__}")
    spec = _fields()
    unknown = [k for k in raw if k not in spec]
    if unknown:
        raise PlayError(f"unknown control {str(unknown[0])[:40]!r}; valid: {', '.join(spec)}")
    values = (base or PlayConfig()).to_dict()
    for k, v in raw.items():
        values[k] = _check(k, spec[k], v)
    if values["noise"] is not None and values["data"] not in PLANE_SETS:
        values["noise"] = None  # noise is a control of the 2-D sets only; kept in the URL, ignored here
    return PlayConfig(**values)


def parse_query(query: str) -> tuple[PlayConfig, PlayConfig | None]:
    """The setups of a shared link's query (``"activation=relu&depth=10&b.activation=tanh"``).

    Keys without a prefix set run A; ``b.KEY`` keys set run B (a comparison; ``compare=1`` alone
    opens one with B's defaults), which starts from A and always shares A's data and seed.  Values
    are converted by the control's kind (``"null"`` for a null) and checked by :func:`parse_config`.

    Raises:
        PlayError: an unknown key or a bad value, named.
    """
    from urllib.parse import parse_qsl

    spec = _fields()
    raw: dict[str, dict[str, Any]] = {"a": {}, "b": {}}
    compare = False
    for key, text in parse_qsl(query.split("?", 1)[-1], keep_blank_values=True):
        if key == "compare":
            compare = compare or text == "1"
            continue
        run, name = ("b", key[2:]) if key.startswith("b.") else ("a", key)
        f = spec.get(name)
        if f is None:
            raise PlayError(f"unknown control {key[:40]!r} in the link; valid: {', '.join(spec)}")
        if text == "null":
            value: Any = None
        elif f.kind == "choice":
            value = text
        else:
            try:
                value = float(text)
            except ValueError:
                raise PlayError(f"{key} must be a number ({f.help}), got {text[:40]!r}") from None
        raw[run][name] = value
    a = parse_config(raw["a"])
    if not (compare or raw["b"]):
        return a, None
    shared = {k: getattr(a, k) for k in SHARED_FIELDS}
    b = parse_config({**raw["b"], **shared}, base=a)
    return a, b


def describe_fields() -> dict[str, dict[str, Any]]:
    """The controls as JSON for the browser (kinds, ranges, choices, help, defaults)."""
    default = PlayConfig().to_dict()
    out = {}
    for name, f in _fields().items():
        d: dict[str, Any] = {"kind": f.kind, "help": f.help, "optional": f.optional, "default": default[name]}
        if f.kind == "choice":
            d["choices"] = list(f.choices)
        else:
            d["low"], d["high"] = f.low, f.high
        out[name] = d
    return out


CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PlayConfig))

__all__ = ["CONFIG_FIELDS", "FEATURES", "SHARED_FIELDS", "parse_query", "IMAGE_SETS", "PLANE_SETS", "Field", "PlayConfig", "PlayError",
           "data_choices", "describe_fields", "parse_config"]
