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


def _families(prof: list[tuple[str, float]]) -> dict[str, list[tuple[str, float]]]:
    """A depth profile split into families of homologous layers (call sites of one module, ``#k``,
    together), each in forward order."""
    out: dict[str, list[tuple[str, float]]] = {}
    for name, v in prof:
        out.setdefault(_family(re.sub(r"#\d+$", "", name)), []).append((name, v))
    return out


def explode_cause(data: "ProbeRecords", records: list, th: Thresholds, at_start: bool = False
                  ) -> tuple[str, str, dict]:
    """The cause of an explosion, stated only where the weights or update ratios show it
    (``at_start``: the weights as they were at the first recorded step)."""
    large = scale_evidence(data, "large", at_start=at_start)
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


@dataclass
class Growth:
    """The depth profiles of one set of records and how much they grow.

    Attributes:
        back: ``[(layer, out_grad_norm)]`` of the hidden activation layers, in forward order.
        fwd: ``[(layer, out_rms)]``, the same.
        to_input: growth of the output-gradient norm from the last layer back to the first.
        to_output: growth of the activation RMS from the first layer to the last.
    """

    back: list
    fwd: list
    to_input: float
    to_output: float

    def hits(self, threshold: float) -> list[tuple[float, str]]:
        return [(g, what) for g, what in ((self.to_input, "back"), (self.to_output, "fwd"))
                if math.isfinite(g) and g >= threshold]

    def describe(self, threshold: float) -> list[str]:
        parts = []
        if math.isfinite(self.to_input) and self.to_input >= threshold:
            parts.append(f"the output-gradient norm grows {_fmt(self.to_input)}x from layer {self.back[-1][0]} back "
                         f"to layer {self.back[0][0]}")
        if math.isfinite(self.to_output) and self.to_output >= threshold:
            parts.append(f"the activation RMS grows {_fmt(self.to_output)}x from layer {self.fwd[0][0]} to layer "
                         f"{self.fwd[-1][0]}")
        return parts


def growth(data: "ProbeRecords", records: list) -> Growth:
    """The :class:`Growth` of ``records`` (medians per layer) in the family of homologous hidden
    activation layers that grows most (NaN where no family has 3 layers).  Never across families:
    a BERT pooler's tanh sees one token where the encoder's GELUs see all, so its gradient norm
    says nothing about depth."""
    backs = _families(_profile(data, records, "out_grad_norm"))
    fwds = _families(_profile(data, records, "out_rms"))
    best = Growth([], [], math.nan, math.nan)
    for key in set(backs) | set(fwds):
        back, fwd = backs.get(key, []), fwds.get(key, [])
        g_back = back[0][1] / back[-1][1] if len(back) >= MIN_LAYERS and back[-1][1] > 0 else math.nan
        g_fwd = fwd[-1][1] / fwd[0][1] if len(fwd) >= MIN_LAYERS and fwd[0][1] > 0 else math.nan
        g = Growth(back, fwd, g_back, g_fwd)
        if _worst(g) > _worst(best):
            best = g
    return best


def _worst(g: Growth) -> float:
    vals = [v for v in (g.to_input, g.to_output) if math.isfinite(v)]
    return max(vals) if vals else -math.inf


def profile_findings(data: "ProbeRecords", recent: list, clean: list, th: Thresholds) -> list[Finding]:
    """Exploding before any NaN: over the recent window at ``th.profile``; or at the first recorded
    step at ``th.profile_start`` when the weights then were too large for the activations they feed
    (two figures agree: a net blown up at initialisation that training has since tamed, or
    collapsed, shows no growth in its last window)."""
    now = growth(data, recent)
    hits = now.hits(th.profile)
    at_start = None
    if not hits and clean:
        s0 = min(r.step for r in clean)
        large = scale_evidence(data, "large", at_start=True)
        start = growth(data, [r for r in clean if r.step == s0]) if large else None
        fed = {s.feeds for s in large}
        if start is not None and any(n in fed for n, _ in start.back + start.fwd):
            hits = start.hits(th.profile_start)
            if hits:
                at_start = (s0, start)
    if not hits:
        return []
    g = at_start[1] if at_start else now
    threshold = th.profile_start if at_start else th.profile
    cause, advice, extra = explode_cause(data, clean, th, at_start=at_start is not None)
    figures = {"out_grad_growth_to_input": g.to_input, "activation_rms_growth_to_output": g.to_output,
               "out_grad_norm": dict(g.back), "out_rms": dict(g.fwd), "threshold": threshold, **extra}
    parts = g.describe(threshold)
    if at_start:
        s0, _ = at_start
        figures["step"] = s0
        figures["recent_growth"] = {"out_grad_to_input": now.to_input, "activation_rms_to_output": now.to_output}
        theory = _start_theory(data, g)
        if theory:
            figures["mean_field_per_layer"] = theory[0]
            parts.append(theory[1])
        recent_steps = len({r.step for r in recent})
        msg = (f"exploding signal at the first recorded step ({s0}), before any NaN: " + "; ".join(parts)
               + f"; over the last {recent_steps} recorded step(s) the growth is "
               + f"{_fmt(now.to_input)}x back, {_fmt(now.to_output)}x forward")
    else:
        msg = "exploding signal before any NaN: " + "; ".join(parts)
    worst = max(v for v, _ in hits)
    sev = "error" if worst >= th.profile * th.severe / 10 else "warning"
    layers = [g.back[0][0]] if any(w == "back" for _, w in hits) else [g.fwd[-1][0]]
    return [Finding(sev, "exploding_gradients", layers, figures, cause, advice, msg)]


def _start_theory(data: "ProbeRecords", g: Growth) -> tuple[float, str] | None:
    """The mean field's backward factor per layer at the start's median sigma_w^2, beside the
    measured one, when the profile's layers share one activation."""
    prof = g.back if math.isfinite(g.to_input) else g.fwd
    names = {n for n, _ in prof}
    specs = {l.spec.name: l.spec for l in data.layers if l.name in names and l.spec is not None}
    if len(specs) != 1 or len(prof) < MIN_LAYERS:
        return None
    act, spec = next(iter(specs.items()))
    sw = sorted(s.sigma_w2 for s in weight_scales(data, at_start=True) if s.feeds in names and not s.zero)
    if not sw:
        return None
    sw2 = sw[len(sw) // 2]
    theory = _sqrt_chi_1(spec, sw2)
    if not math.isfinite(theory):
        return None
    measured = (g.to_input if prof is g.back else g.to_output) ** (1.0 / (len(prof) - 1))
    return theory, (f"{measured:.3g}x per layer measured, {theory:.3g}x by the mean field (sqrt(chi_1) for {act} "
                    f"at the measured sigma_w^2 = {sw2:.3g}, sigma_b^2 = 0)")


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
    fams = _families(_profile(data, recent, "out_grad_norm"))
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
