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
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from actlab.activations.spec import ActivationSpec
    from actlab.probe.probe import Probe, ProbeLayer

# sigma_w^2 / reference outside [SMALL, LARGE] is called too small / too large: a factor 2 either
# way moves a 10-layer net's signal by 2^5 = 32x, which the detectors' thresholds notice.
SMALL, LARGE = 0.5, 1.9


@lru_cache(maxsize=None)
def reference_sigma_w2(spec: "ActivationSpec") -> tuple[float, float]:
    """``(gain^2, critical sigma_w^2)`` for an activation without hyperparameters (NaN where the
    theory has none): gain^2 keeps the forward variance, the critical value keeps chi_1 = 1."""
    from actlab.theory import TheoryError, critical_sigma_w2, gain

    def safe(fn: Any) -> float:
        try:
            v = float(fn(spec))
        except (TheoryError, ValueError, TypeError, ZeroDivisionError):
            return math.nan
        return v if math.isfinite(v) else math.nan

    g = safe(gain)
    return g * g, safe(critical_sigma_w2)


@dataclass
class LayerScale:
    """The weight scale of one layer with a weight matrix or kernel, and what it feeds."""

    layer: str
    sigma_w2: float  # fan_in * mean(W^2): the variance scale the mean-field theory uses
    zero: bool  # every weight is exactly 0
    activation: str  # the activation that runs next ("" if none)
    reference: float  # that activation's gain^2 (NaN if unknown)
    critical: float  # its critical sigma_w^2 (NaN if none)

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
            return f"{self.layer}: all weights are 0"
        ref = f"{self.reference:.3g} for {self.activation}" if self.activation else "unknown"
        return f"{self.layer}: sigma_w^2 = {self.sigma_w2:.3g} (variance-preserving {ref})"


def _weight(module: torch.nn.Module) -> torch.Tensor | None:
    w = getattr(module, "weight", None)
    if isinstance(w, torch.Tensor) and w.dim() >= 2:
        return w
    return None


def _next_activation(probe: "Probe", layer: "ProbeLayer") -> "ProbeLayer | None":
    """The first activation layer that runs after ``layer`` and before the next chain layer."""
    later = sorted((l for l in probe.layers if l.order > layer.order and l.order < 1 << 30),
                   key=lambda l: l.order)
    for l in later:
        if l.spec is not None:
            return l
        if l.chain:
            return None
    return None


def weight_scales(probe: "Probe") -> list[LayerScale]:
    """One :class:`LayerScale` per layer with a weight matrix or kernel, in forward order."""
    modules = dict(probe.model.named_modules())
    out = []
    for layer in sorted((l for l in probe.layers if l.chain and l.order < 1 << 30), key=lambda l: l.order):
        w = _weight(modules.get(layer.name, torch.nn.Identity()))
        if w is None:
            continue
        w = w.detach().float()
        fan_in = w[0].numel()
        sq = float(w.square().mean()) if w.numel() else math.nan
        zero = bool(w.numel()) and not bool(w.any())
        act = _next_activation(probe, layer)
        ref, crit = (reference_sigma_w2(act.spec) if act is not None and act.spec is not None and not act.params
                     else (math.nan, math.nan))
        out.append(LayerScale(layer.name, fan_in * sq, zero, act.spec.name if act is not None and act.spec else "",
                              ref, crit))
    return out


def zero_at_start(probe: "Probe") -> list[str]:
    """Layers whose weight matrix was all zeros at the first recorded step."""
    got = probe._init_amax or []
    if not got:
        return []
    vals = torch.stack([a.float() for _, a in got]).cpu().tolist()
    return [probe.layers[li].name for (li, _), v in zip(got, vals) if v == 0.0]


def scale_evidence(probe: "Probe", want: str, layers: list[str] | None = None) -> list[LayerScale]:
    """The layers (of ``layers``, default all) whose weight verdict is ``want``."""
    return [s for s in weight_scales(probe) if s.verdict == want and (layers is None or s.layer in layers)]


@dataclass
class InputStats:
    """Mean, std and RMS of the model's first floating-point input (median over recorded steps)."""

    mean: float
    std: float
    rms: float
    steps: int
    nonfinite_steps: list[int]


def input_stats(probe: "Probe") -> InputStats | None:
    if not probe._inputs:
        return None
    rows = [(s, float(a), float(b), n) for s, a, b, n in probe._inputs]
    bad = [s for s, a, _, _ in rows if not math.isfinite(a)]
    good = [(a / n, b / n) for s, a, b, n in rows if math.isfinite(a) and math.isfinite(b)]
    if not good:
        return InputStats(math.nan, math.nan, math.nan, len(rows), bad)
    means = sorted(m for m, _ in good)
    sqs = sorted(q for _, q in good)
    mean, sq = means[len(means) // 2], sqs[len(sqs) // 2]
    return InputStats(mean, math.sqrt(max(sq - mean * mean, 0.0)), math.sqrt(sq), len(rows), bad)


def losses(probe: "Probe") -> list[tuple[int, float]]:
    """The losses given to :meth:`Probe.step`, as ``(step, value)`` on the host."""
    if not probe._losses:
        return []
    vals = [v for _, v in probe._losses]
    if all(isinstance(v, torch.Tensor) for v in vals):
        host = torch.stack([v.float().reshape(()) for v in vals]).cpu().tolist()
    else:
        host = [float(v) for v in vals]
    return [(s, float(v)) for (s, _), v in zip(probe._losses, host)]


def max_update_ratio(records: list, before: int | None = None) -> float:
    vals = [r.update_ratio for r in records if not math.isnan(r.update_ratio) and (before is None or r.step < before)]
    return max(vals, default=math.nan)


def median_update_ratio(records: list) -> float:
    """Median update ratio of the parametrised layers (NaN if never measured)."""
    vals = [r.update_ratio for r in records if not math.isnan(r.update_ratio) and r.kind == "parametrised"]
    return float(sorted(vals)[len(vals) // 2]) if vals else math.nan
