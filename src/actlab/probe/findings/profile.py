"""Exploding before any NaN: the output-gradient norm growing toward the input, or the
activations' RMS growing toward the output, across the activation layers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from actlab.probe.findings.base import Finding, Thresholds, _by_layer, _fmt, _nanmedian, _ranges
from actlab.probe.findings.evidence import fix_line, max_update_ratio, scale_evidence

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
