"""Figures the detectors check a cause against before they state it.

A finding names a cause only when one of these supports it: the scale of the weights against
the activation's variance-preserving scale (from :mod:`actlab.theory`), the statistics of the
model's input, the update ratios, the losses given to :meth:`Probe.step`.  Otherwise it says
what it sees and lists the candidate causes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from actlab.activations.spec import ActivationSpec
    from actlab.probe.records import LayerInfo, ProbeRecords

# sigma_w^2 / reference outside [SMALL, LARGE] is called too small / too large: a factor 2 either
# way moves a 10-layer net's signal by 2^5 = 32x, which the detectors' thresholds notice.
SMALL, LARGE = 0.5, 1.9


@lru_cache(maxsize=None)
def reference_sigma_w2(spec: "ActivationSpec") -> float:
    """gain^2 of an activation without hyperparameters, the variance-preserving ``sigma_w^2``
    (NaN where the theory has none)."""
    # meanfield directly: actlab.theory also holds compare, which measures models with the probe
    from actlab.theory.meanfield import TheoryError, gain

    try:
        g = float(gain(spec))
    except (TheoryError, ValueError, TypeError, ZeroDivisionError):
        return math.nan
    return g * g if math.isfinite(g) else math.nan


@lru_cache(maxsize=None)
def critical_of(spec: "ActivationSpec") -> tuple[float, float]:
    """``(sigma_w^2, sigma_b^2)`` of the activation's critical point, as ``actlab.init.critical_``
    draws it (:func:`actlab.theory.critical_point`: at sigma_b^2 = 0 where there is one, else at
    the smallest bias variance that has one); NaNs where the theory has none.  Asked only when
    advice is written: near a switch (GELU) the root searches take seconds."""
    from actlab.theory.meanfield import TheoryError, critical_point

    try:
        sw, sb = critical_point(spec)
    except (TheoryError, ValueError, TypeError, ZeroDivisionError):
        return math.nan, math.nan
    return (float(sw), float(sb)) if math.isfinite(sw) else (math.nan, math.nan)


@dataclass
class LayerScale:
    """The weight scale of one layer with a weight matrix or kernel, and what it feeds."""

    layer: str
    sigma_w2: float  # fan_in * mean(W^2): the variance scale the mean-field theory uses
    zero: bool  # every weight is exactly 0
    activation: str  # the activation that runs next ("" if none)
    reference: float  # that activation's gain^2 (NaN if unknown)
    spec: "ActivationSpec | None" = None  # that activation
    feeds: str = ""  # the name of that activation's layer ("" if none)

    @property
    def critical(self) -> float:
        """The activation's critical sigma_w^2 (NaN if none), see :func:`critical_of`."""
        return critical_of(self.spec)[0] if self.spec is not None else math.nan

    @property
    def critical_b2(self) -> float:
        """The sigma_b^2 of that critical point (0 for most activations)."""
        return critical_of(self.spec)[1] if self.spec is not None else math.nan

    @property
    def ratio(self) -> float:
        return self.sigma_w2 / self.reference if self.reference > 0 else math.nan

    @property
    def verdict(self) -> str:
        """``"zero"``, ``"small"``, ``"large"``, ``"ok"`` or ``"unknown"``."""
        if self.zero:
            return "zero"
        r = self.ratio
        if math.isnan(r):
            return "unknown"
        return "small" if r < SMALL else "large" if r > LARGE else "ok"

    def describe(self) -> str:
        if self.zero:
            return f"layer {self.layer} has all weights 0"
        ref = f"{self.reference:.3g} for {self.activation}" if self.activation else "unknown"
        return (f"layer {self.layer} has sigma_w^2 = fan_in * mean(W^2) = {self.sigma_w2:.3g} "
                f"(variance-preserving {ref})")


def _next_activation(data: "ProbeRecords", layer: "LayerInfo") -> "LayerInfo | None":
    """The first activation layer that runs after ``layer`` and before the next chain layer."""
    for l in sorted((l for l in data.layers if l.order > layer.order), key=lambda l: l.order):
        if l.spec is not None:
            return l
        if l.chain:
            return None
    return None


def weight_scales(data: "ProbeRecords", at_start: bool = False) -> list[LayerScale]:
    """One :class:`LayerScale` per layer with a weight matrix or kernel, in forward order.

    Args:
        at_start: the weights as they were at the first recorded step (``sigma_w2_start``), not
            when the records were read.
    """
    out = []
    for layer in sorted((l for l in data.layers if l.chain and l.order >= 0), key=lambda l: l.order):
        sw2 = layer.sigma_w2_start if at_start else layer.sigma_w2
        if math.isnan(sw2):
            continue
        act = _next_activation(data, layer)
        ref = reference_sigma_w2(act.spec) if act is not None else math.nan
        out.append(LayerScale(layer.name, sw2, sw2 == 0.0, act.activation if act else "",
                              ref, act.spec if act is not None else None, act.name if act is not None else ""))
    return out


def fix_line(scales: list[LayerScale]) -> str:
    """The one-line fix with the theory's numbers for the activations of ``scales``."""
    per: dict[str, tuple[float, float, float]] = {}
    for s in scales:
        if s.activation and s.activation not in per:
            per[s.activation] = (s.critical, s.critical_b2, s.reference)

    if any(math.isnan(c) for c, _, _ in per.values()):
        # critical_ would refuse (the theory has no edge of chaos for one of them): the
        # variance-preserving scale instead
        nums = ", ".join(f"sigma_w^2 = {r:.3g} for {a}" for a, (_, _, r) in per.items() if not math.isnan(r))
        return "actlab.init.xavier_(model)" + (f" (gain^2: {nums})" if nums else "") + ", or He for ReLU"
    nums = ", ".join(f"sigma_w^2 = {c:.3g}" + (f" with bias variance {b2:g}" if b2 > 0 else "") + f" for {a}"
                     for a, (c, b2, _) in per.items())
    return "actlab.init.critical_(model)" + (f" ({nums})" if nums else "") + ", or He for ReLU / Xavier for tanh"


def zero_at_start(data: "ProbeRecords") -> list[str]:
    """Layers whose weight matrix was all zeros at the first recorded step."""
    return [l.name for l in data.layers if l.sigma_w2_start == 0.0]


def scale_evidence(data: "ProbeRecords", want: str, layers: list[str] | None = None,
                   at_start: bool = False) -> list[LayerScale]:
    """The layers (of ``layers``, default all) whose weight verdict is ``want`` (``at_start``: at
    the first recorded step, see :func:`weight_scales`)."""
    return [s for s in weight_scales(data, at_start) if s.verdict == want and (layers is None or s.layer in layers)]


@dataclass
class InputStats:
    """Mean, std and RMS of the model's first floating-point input (median over recorded steps)."""

    mean: float
    std: float
    rms: float
    steps: int
    nonfinite_steps: list[int]


def input_stats(data: "ProbeRecords") -> InputStats | None:
    if not data.inputs:
        return None
    bad = [s for s, m, _ in data.inputs if not math.isfinite(m)]
    good = [(m, q) for _, m, q in data.inputs if math.isfinite(m) and math.isfinite(q)]
    if not good:
        return InputStats(math.nan, math.nan, math.nan, len(data.inputs), bad)
    means = sorted(m for m, _ in good)
    sqs = sorted(q for _, q in good)
    mean, sq = means[len(means) // 2], sqs[len(sqs) // 2]
    return InputStats(mean, math.sqrt(max(sq - mean * mean, 0.0)), math.sqrt(sq), len(data.inputs), bad)


def max_update_ratio(records: list, before: int | None = None) -> float:
    vals = [r.update_ratio for r in records if not math.isnan(r.update_ratio) and (before is None or r.step < before)]
    return max(vals, default=math.nan)


def median_update_ratio(records: list) -> float:
    """Median update ratio of the parametrised layers (NaN if never measured)."""
    vals = [r.update_ratio for r in records if not math.isnan(r.update_ratio) and r.kind == "parametrised"]
    return float(sorted(vals)[len(vals) // 2]) if vals else math.nan
