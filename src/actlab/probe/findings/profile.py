"""The signal's profile across the hidden activation layers: exploding before any NaN (the
output-gradient norm growing toward the input, or the activations' RMS growing toward the output)
and, mirrored, vanishing (the output-gradient norm shrinking toward the input).

The output-gradient profile is what the mean-field chi_1 describes: the factor by which one layer
scales the backward signal.  Unlike the parameter gradients it does not fall with the loss's
own gradient when a net collapses to the class prior (the last layer's weight gradient then
sums to ~0 over the batch, while dL/d output stays p - y), so it still sees the attenuation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actlab.probe.findings.base import Finding, Thresholds, _by_layer, _family, _fmt, _nanmedian, _ranges
from actlab.probe.findings.evidence import fix_line, max_update_ratio, scale_evidence, weight_scales

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.records import ProbeRecords

MIN_LAYERS = 3


def _profile(data: "ProbeRecords", recent: list, field: str) -> list[tuple[str, float]]:
    acts = {l.name for l in data.layers if l.spec is not None and l.role == "hidden"}
    out = []
    for name, rs in _by_layer([r for r in recent if r.layer in acts]).items():
        v = _nanmedian([getattr(r, field) for r in rs])
        if math.isfinite(v):
            out.append((min(r.order for r in rs), name, v))
    return [(n, v) for _, n, v in sorted(out)]


def explode_cause(data: "ProbeRecords", records: list, th: Thresholds) -> tuple[str, str, dict]:
    """The cause of an explosion, stated only where the weights or update ratios show it."""
    large = scale_evidence(data, "large")
    ratio = max_update_ratio(records)
    figures: dict = {}
    if large:
        figures["weight_scale"] = {s.layer: {"sigma_w2": s.sigma_w2, "gain2": s.reference, "critical": s.critical,
                                             "critical_sigma_b2": s.critical_b2}
                                   for s in large}
        s = max(large, key=lambda s: s.ratio)
        cause = (f"weights too large for this depth: {s.describe()}, {s.ratio:.3g}x it "
                 f"(layers: {_ranges([x.layer for x in large])})")
        advice = "re-initialise per activation: " + fix_line(large)
    elif not math.isnan(ratio) and ratio > th.high_update:
        figures["max_update_ratio"] = ratio
        cause = f"learning rate too high: update ratios reached {_fmt(ratio)} (about 1e-3 is typical)"
        advice = "lower the learning rate, or clip gradients (torch.nn.utils.clip_grad_norm_)"
    else:
        cause = ("the probe's figures do not single out a cause; candidates: weights too large for the depth, "
                 "a learning rate high enough to feed back on itself, missing normalisation")
        advice = "lower the learning rate, clip gradients, use He/Xavier initialisation, add normalisation"
    return cause, advice, figures


def profile_findings(data: "ProbeRecords", recent: list, clean: list, th: Thresholds) -> list[Finding]:
    back = _profile(data, recent, "out_grad_norm")
    fwd = _profile(data, recent, "out_rms")
    g_back = back[0][1] / back[-1][1] if len(back) >= MIN_LAYERS and back[-1][1] > 0 else math.nan
    g_fwd = fwd[-1][1] / fwd[0][1] if len(fwd) >= MIN_LAYERS and fwd[0][1] > 0 else math.nan
    hits = [(g, what) for g, what in ((g_back, "back"), (g_fwd, "fwd")) if math.isfinite(g) and g >= th.profile]
    if not hits:
        return []
    cause, advice, extra = explode_cause(data, clean, th)
    figures = {"out_grad_growth_to_input": g_back, "activation_rms_growth_to_output": g_fwd,
               "out_grad_norm": dict(back), "out_rms": dict(fwd), "threshold": th.profile, **extra}
    parts = []
    if math.isfinite(g_back) and g_back >= th.profile:
        parts.append(f"the output-gradient norm grows {_fmt(g_back)}x from layer {back[-1][0]} back to layer "
                     f"{back[0][0]}")
    if math.isfinite(g_fwd) and g_fwd >= th.profile:
        parts.append(f"the activation RMS grows {_fmt(g_fwd)}x from layer {fwd[0][0]} to layer {fwd[-1][0]}")
    worst = max(g for g, _ in hits)
    sev = "error" if worst >= th.profile * th.severe / 10 else "warning"
    layers = [back[0][0]] if any(w == "back" for _, w in hits) else [fwd[-1][0]]
    msg = "exploding signal before any NaN: " + "; ".join(parts)
    return [Finding(sev, "exploding_gradients", layers, figures, cause, advice, msg)]


@dataclass
class Attenuation:
    """The output-gradient norm of the first hidden activation layer against the last's.

    Attributes:
        ratio: first / last, median over the window.
        first, last: the two layers.
        layers: hidden activation layers between them, both included.
        per_layer: ``ratio ** (1 / (layers - 1))``: the measured factor per layer.
        since: the first step of the run of recorded steps, up to the last, on which the ratio
            stayed below the threshold (``None``: the window's median is below but no trailing run is).
        first_step: the first recorded step.
        profile: ``{layer: out_grad_norm}`` (window median), in forward order.
        theory: ``sqrt(chi_1)`` from the mean field at the layers' median sigma_w^2 and
            sigma_b^2 = 0 (NaN where the activations differ or the theory has no value).
        sigma_w2: that median sigma_w^2.
        activation: the activation of the layers ("" when they differ).
    """

    ratio: float
    first: str
    last: str
    layers: int
    per_layer: float
    since: int | None
    first_step: int
    profile: dict = field(default_factory=dict)
    theory: float = math.nan
    sigma_w2: float = math.nan
    activation: str = ""

    def figures(self) -> dict:
        return {"out_grad_ratio_first_to_last": self.ratio, "out_grad_first": self.first, "out_grad_last": self.last,
                "out_grad_norm": dict(self.profile), "per_layer_factor": self.per_layer,
                "mean_field_per_layer": self.theory, "median_sigma_w2": self.sigma_w2, "since_step": self.since}

    def describe(self) -> str:
        """The measured attenuation, with the mean field's where it has one."""
        txt = f"the output-gradient norm falls {self.per_layer:.3g}x per layer over {self.layers} layers"
        if math.isfinite(self.theory):
            txt += (f" (mean field: sqrt(chi_1) = {self.theory:.3g} for {self.activation} at the measured "
                    f"sigma_w^2 = {self.sigma_w2:.3g}, sigma_b^2 = 0)")
        return txt


def attenuation(data: "ProbeRecords", recent: list, clean: list, th: Thresholds) -> Attenuation | None:
    """The backward attenuation along depth across a family of homologous hidden activation
    layers (call sites of one activation included), when it is below ``th.vanishing`` (the
    mirror of the exploding test above); ``None`` otherwise."""
    # within a family of homologous activation layers (the same activation along depth, or along
    # time for a cell called per step), never across roles: a pooler's tanh after twelve encoder
    # blocks' GELUs sees another tensor, and the ratio says nothing about depth
    fams: dict[str, list[tuple[str, float]]] = {}
    for name, v in _profile(data, recent, "out_grad_norm"):
        fams.setdefault(_family(re.sub(r"#\d+$", "", name)), []).append((name, v))
    profs = [p for p in fams.values() if len(p) >= MIN_LAYERS and p[-1][1] > 0]
    if not profs:
        return None
    back = min(profs, key=lambda p: p[0][1] / p[-1][1])
    ratio = back[0][1] / back[-1][1]
    if not ratio < th.vanishing:
        return None
    first, last = back[0][0], back[-1][0]
    # over the run: each recorded step's own ratio, to say since when it has been vanishing
    per_step: dict[int, dict[str, float]] = {}
    for r in clean:
        if r.layer in (first, last) and math.isfinite(r.out_grad_norm):
            per_step.setdefault(r.step, {})[r.layer] = r.out_grad_norm
    steps = sorted(s for s, v in per_step.items() if len(v) == 2 and v[last] > 0)
    since = None
    for s in reversed(steps):
        if per_step[s][first] / per_step[s][last] < th.vanishing:
            since = s
        else:
            break
    n = len(back)
    per_layer = ratio ** (1.0 / (n - 1)) if ratio > 0 else 0.0
    names = {n_ for n_, _ in back}
    specs = {l.spec.name: l.spec for l in data.layers if l.name in names and l.spec is not None}
    theory, sw2, act = math.nan, math.nan, ""
    if len(specs) == 1:
        act, spec = next(iter(specs.items()))
        # the weights that scale the backward signal between the first and last layer: all but the first
        sw = sorted([s.sigma_w2 for s in weight_scales(data) if s.activation == act and not s.zero][1:])
        if sw:
            sw2 = sw[len(sw) // 2]
            theory = _sqrt_chi_1(spec, sw2)
    return Attenuation(ratio, first, last, n, per_layer, since, min((r.step for r in clean), default=0),
                       dict(back), theory, sw2, act)


def _sqrt_chi_1(spec, sigma_w2: float) -> float:
    # meanfield directly, as evidence.reference_sigma_w2 does (actlab.theory also holds compare, which uses the probe)
    from actlab.theory.meanfield import TheoryError, chi_1

    try:
        v = float(chi_1(spec, sigma_w2, 0.0))
    except (TheoryError, ValueError, TypeError, ZeroDivisionError):
        return math.nan
    return math.sqrt(v) if math.isfinite(v) and v >= 0 else math.nan
