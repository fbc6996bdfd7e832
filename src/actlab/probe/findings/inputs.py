"""Input statistics: the mean and scale of what the first layer receives (the model's input)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from actlab.probe.findings.base import Finding, Thresholds, _fmt
from actlab.probe.findings.evidence import input_stats

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.records import LayerInfo, ProbeRecords

_NORMS = ("Norm",)  # a model that normalises its input first (BatchNorm, LayerNorm...) is not judged


def input_findings(data: "ProbeRecords", th: Thresholds) -> list[Finding]:
    st = input_stats(data)
    if st is None or math.isnan(st.rms):
        return []
    first = min((l for l in data.layers if l.order >= 0 and l.kind == "parametrised"),
                key=lambda l: l.order, default=None)
    if first is not None and any(k in first.module for k in _NORMS):
        return []
    off = abs(st.mean) > th.input_scale and abs(st.mean) > st.std
    if st.rms <= th.input_scale and not off:
        return []
    figures = {"mean": st.mean, "std": st.std, "rms": st.rms, "threshold": th.input_scale,
               "recorded_steps": st.steps, "first_layer": first.name if first is not None else None}
    nxt = _next_layer(data, first)
    if nxt is not None and any(k in nxt.module for k in _NORMS):
        # conv -> BatchNorm on raw pixels trains as well as on standardised ones: the scale never
        # reaches an activation, so it is said, not warned about
        figures["normalised_by"] = nxt.name
        return [Finding("info", "input_statistics", [first.name], figures,
                        f"{nxt.name} ({nxt.module}) normalises {first.name}'s output before any activation "
                        "sees it: the input's scale does not reach the nonlinearities",
                        "nothing needed here; standardise the inputs if that normalisation is ever removed",
                        f"input not standardised (mean {_fmt(st.mean)}, std {_fmt(st.std)}), normalised right after "
                        "the first layer")]
    cause = (f"inputs not standardised: mean {_fmt(st.mean)}, std {_fmt(st.std)} (RMS {_fmt(st.rms)}), so the first "
             f"layer's pre-activations are about {_fmt(st.rms)}x the scale its initialisation assumes (RMS 1)")
    advice = ("standardise the inputs per feature with the training set's statistics: x = (x - mean) / std "
              "(for pixels 0-255: x / 255, then subtract the mean and divide by the std)")
    msg = f"input not standardised: mean {_fmt(st.mean)}, std {_fmt(st.std)}"
    return [Finding("warning", "input_statistics", [first.name] if first is not None else [], figures, cause,
                    advice, msg)]


def _next_layer(data: "ProbeRecords", layer: "LayerInfo | None") -> "LayerInfo | None":
    """The layer that runs right after ``layer`` (the next in forward order), or ``None``."""
    if layer is None:
        return None
    later = [l for l in data.layers if l.order > layer.order]
    return min(later, key=lambda l: l.order, default=None)
