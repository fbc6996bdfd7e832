"""Loss trend: a plateau or a divergence, from the losses given to ``Probe.step(loss=...)``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from actlab.probe.findings.base import Finding, Thresholds, _fmt
from actlab.probe.findings.evidence import max_update_ratio, median_update_ratio

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.records import ProbeRecords

MIN_LOSSES = 20
# "learning rate too low" needs even the largest update ratio of the run (the first steps, where a
# collapsing net still has its gradients) below LOW_PEAK x Thresholds.low_update
LOW_PEAK = 10.0


def loss_findings(data: "ProbeRecords", records: list, th: Thresholds, others: list[Finding]) -> list[Finding]:
    """Plateau or divergence; the plateau's cause defers to the other findings that explain it."""
    symmetric = any(f.kind == "symmetry" for f in others)
    got = data.losses
    vals = []
    for _, v in got:  # up to the first non-finite loss: the non_finite finding covers what follows
        if not math.isfinite(v):
            break
        vals.append(v)
    if len(vals) < MIN_LOSSES:
        return []
    k = max(3, len(vals) // 5)
    first, last = float(np.median(vals[:k])), float(np.median(vals[-k:]))
    figures = {"first": first, "last": last, "losses": len(vals)}
    ratio = max_update_ratio(records)
    high = not math.isnan(ratio) and ratio > th.high_update
    # A loss that blew up within the first few steps (one huge update) has its first fifth's median
    # already up there: against the loss at the untouched initialisation it is a divergence, when
    # the update ratios show the steps that caused it.
    jumped = vals[0] > 0 and last > th.diverge * vals[0] and high
    if (first > 0 and last > th.diverge * first) or jumped:
        figures["max_update_ratio"] = ratio
        if high:
            cause = f"learning rate too high: update ratios reached {_fmt(ratio)} (about 1e-3 is typical)"
        else:
            cause = ("the loss rises; candidates: a learning rate too high for this model, a loss or label bug, "
                     "or data that changes during training")
        if first > 0 and last > th.diverge * first:
            msg = f"loss diverging: median {_fmt(first)} over the first {k} steps, {_fmt(last)} over the last {k}"
        else:
            figures["initial"] = vals[0]
            msg = (f"loss diverged at the start: {_fmt(vals[0])} at the first step, median {_fmt(first)} over the "
                   f"first {k} steps and {_fmt(last)} over the last {k}")
        return [Finding("warning", "loss_trend", [], figures, cause,
                        "lower the learning rate (try 1/10), or add warm-up and gradient clipping", msg)]
    # a plateau: the fall over the run (least-squares line) is below plateau x first, or within two
    # standard errors of it; batch-to-batch noise makes first-vs-last medians alone call a flat run falling
    t = np.arange(len(vals), dtype=float)
    y = np.asarray(vals)
    slope, icept = np.polyfit(t, y, 1)
    resid = y - (slope * t + icept)
    se = float(np.sqrt(resid.var(ddof=2) / ((t - t.mean()) ** 2).sum()))
    fall, noise = -float(slope) * (len(vals) - 1), 2.0 * se * (len(vals) - 1)
    figures.update({"fall": fall, "fall_noise": noise})
    # A curve that drops fast and then flattens fits a line badly (its residuals inflate the noise):
    # the first and last fifths, compared by rank, still show such a fall.
    p_fell = _p_lower(vals[-k:], vals[:k])
    figures["p_last_lower"] = p_fell
    fell = last < first * (1.0 - th.plateau) and p_fell < 0.01
    if first > 0 and fall < max(th.plateau * first, noise) and not fell:
        med = median_update_ratio(records)
        top = max_update_ratio(records)
        figures["median_update_ratio"] = med
        figures["max_update_ratio"] = top
        explained = [f.kind for f in others if f.severity in ("warning", "error")]
        if symmetric:
            cause = "identical units (see the symmetry finding): the network has the capacity of one unit per layer"
            advice = "initialise the weights randomly (actlab.init.critical_(model))"
        elif explained:
            cause = f"explained by the findings above ({', '.join(sorted(set(explained)))})"
            advice = "fix those first"
        elif not math.isnan(med) and med < th.low_update and top < th.low_update * LOW_PEAK:
            cause = (f"learning rate too low: the median update-to-weight ratio is {_fmt(med)} per step and the "
                     f"largest over the run {_fmt(top)} (about 1e-3 is typical) while no other finding holds the "
                     "gradients back")
            advice = "raise the learning rate (by 10-100x here), or use Adam"
        elif not math.isnan(med) and med < th.low_update:
            # the same learning rate moved the weights before: the gradients fell, not the step size
            cause = (f"the updates are tiny now (median update-to-weight ratio {_fmt(med)}) but reached {_fmt(top)} "
                     "earlier in the run with the same learning rate, so the gradients shrank; candidates: a "
                     "net collapsed to a constant output (the class prior), vanishing gradients below the "
                     "threshold, dead or saturated units")
            advice = "check the other findings and the output-gradient norms per layer; a larger learning rate "\
                     "will not move a net whose gradients are zero"
        else:
            cause = ("the loss does not fall; candidates: learning rate too low, vanishing gradients, dead or "
                     "saturated units, labels the inputs cannot predict")
            advice = "check the other findings; try a 10x larger learning rate"
        how = (f"fell less than {th.plateau:.0%}" if fall < th.plateau * first else
               f"the fall, {_fmt(fall)} by a least-squares line, is within the batch-to-batch noise (+-{_fmt(noise)})")
        msg = f"loss plateau: median {_fmt(first)} over the first {k} steps, {_fmt(last)} over the last {k} ({how})"
        return [Finding("warning", "loss_trend", [], figures, cause, advice, msg)]
    return []


def _p_lower(a: list[float], b: list[float]) -> float:
    """One-sided p-value that ``a`` tends lower than ``b`` (Mann-Whitney U); 1.0 when it cannot be told."""
    from scipy.stats import mannwhitneyu

    try:
        return float(mannwhitneyu(a, b, alternative="less").pvalue)
    except ValueError:
        return 1.0
