"""What every detector shares: :class:`Finding`, :class:`Thresholds` and small formatting helpers
(one home, so the detector files import this and not the package that imports them)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Thresholds:
    """Where the detectors draw the line.

    Args:
        vanishing: gradient RMS of a layer near the input over the largest layer's, below which
            gradients vanish. Default: ``1e-3``.
        exploding: the inverse, for exploding gradients (and growth of the total norm over the
            run). Default: ``1e3``.
        dead: fraction of a layer's units dead over the window. Default: ``0.1``.
        born_dead: fraction of a layer's units dead on the first batch (deep ReLU nets at He
            initialisation already have 10-20% in their last layers on a batch of 128). Default: ``0.25``.
        saturated: mean fraction of saturated (sample, unit) over the window. Default: ``0.25``.
        off_centre: ``|mean| / std`` of a layer's output. Default: ``1.0``.
        high_update: update-to-weight ratio above which the learning rate is called too high
            (about 1e-3 is typical for SGD). Default: ``1e-2``.
        severe: factor past the threshold (or fraction 0.4 for dead/saturated) that makes a
            warning an error. Default: ``1e3``.
        profile: growth of the output-gradient norm toward the input (or of the activation RMS
            toward the output) across the hidden activation layers that is called exploding,
            before any NaN. Default: ``100``.
        profile_start: the same growth at the first recorded step, called exploding when the
            weights then were too large for the activations they feed (``sigma_w^2`` above 1.9x
            the variance-preserving scale): two figures agree, so one decade, not two. Default: ``10``.
        input_scale: RMS, or ``|mean|`` when it exceeds the std, of the model's input above
            which the input is called not standardised. Default: ``10``.
        plateau: fall of the loss over the run (least-squares line through the losses given to
            ``Probe.step``), as a fraction of its start, below which 20 or more losses are a
            plateau (also when the fall is within two standard errors). Default: ``0.01``.
        diverge: rise of the loss by this factor (median of the first fifth to the last) is a
            divergence. Default: ``2``.
        low_update: median update-to-weight ratio below which the learning rate is called too
            low (on a plateau, when no other finding explains it and even the run's largest
            ratio is below 10x this: a net whose gradients fell is not helped by a larger
            step). Default: ``1e-5``.
        identical: share of a hidden layer's units identical to another (``identical_units``)
            that is broken symmetry. Default: ``0.5``.
    """

    vanishing: float = 1e-3
    exploding: float = 1e3
    dead: float = 0.1
    born_dead: float = 0.25
    saturated: float = 0.25
    off_centre: float = 1.0
    high_update: float = 1e-2
    severe: float = 1e3
    profile: float = 100.0
    profile_start: float = 10.0
    input_scale: float = 10.0
    plateau: float = 0.01
    diverge: float = 2.0
    low_update: float = 1e-5
    identical: float = 0.5


@dataclass
class Finding:
    """One diagnosis: what is wrong, where, the figures that show it, the cause and the fix."""

    severity: str
    kind: str
    layers: list[str]
    figures: dict[str, Any]
    cause: str
    advice: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"


# ---------------------------------------------------------------------------- helpers
def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.1e}" if a < 1e-2 or a >= 1e4 else f"{v:.3g}"


def _ranges(names: list[str], max_items: int = 6) -> str:
    if len(names) <= max_items:
        return ", ".join(names)
    return ", ".join(names[:max_items]) + f" and {len(names) - max_items} more"


def _family(name: str) -> str:
    """The layer's role with its block indices taken out: ``encoder.layer.2.attention.self.query``
    and ``fc3`` become ``encoder.layer.#.attention.self.query`` and ``fc#``.  Layers of one family
    are the same layer repeated along depth (the Linear layers of a Sequential MLP are one family,
    ``#``), so their gradients can be compared; layers of different roles cannot (an attention
    query projection has tiny weight gradients at init in every block, while the logits are near
    zero, which says nothing about depth)."""
    return re.sub(r"\d+", "#", name)


def _by_layer(records: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in records:
        out.setdefault(r.layer, []).append(r)
    return out


def _nanmedian(xs: list[float]) -> float:
    v = [x for x in xs if x is not None and not math.isnan(x)]
    return float(np.median(v)) if v else math.nan


def _nanmean(xs: list[float]) -> float:
    v = [x for x in xs if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan
