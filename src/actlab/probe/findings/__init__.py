"""Detectors: turn the probe's records into findings, each with the figures behind it, the
likely cause and what to change.

Every detector reads measurements only; a healthy network (He-initialised ReLU MLP, a small
CNN, an LSTM, a transformer encoder layer) gives no finding, and the tests hold that.

=====================  =================================================================
kind                   fires when
=====================  =================================================================
``non_finite``         a layer's output or gradient had a NaN/Inf (first layer and step)
``vanishing_gradients`` along depth within a family of homologous layers (the same layer in
                       successive blocks, or the Linear layers of a Sequential stack: names
                       equal once block indices are taken out), the gradient RMS of the
                       member nearest the input is below ``Thresholds.vanishing`` of the
                       family's largest (median over the window); never across roles; or
                       (profile.py) the output-gradient norm of the first hidden activation
                       layer is below ``Thresholds.vanishing`` of the last's (with since when)
``exploding_gradients`` the same, with the first member above ``Thresholds.exploding`` times
                       the family's last, or the total gradient norm grew that much over the run
``dead_units``         a ReLU-like layer (``spec.can_die``) has at least ``Thresholds.dead`` of
                       its units with f' = 0 for every sample over the whole window
``born_dead``          :meth:`Probe.born_dead` found at least ``Thresholds.born_dead`` of a
                       layer's units dead on the first batch
``saturation``         an activation that saturates on both sides or above (``spec.saturates`` is
                       ``"both"`` or ``"right"``: sigmoid, tanh, ReLU6's upper clip) has at least
                       ``Thresholds.saturated`` of its (sample, unit) saturated (never a
                       rectifier's zero side: that is inactive, see ``dead_units``)
``not_zero_centred``   a two-sided saturating, not zero-centred activation (sigmoid) has
                       ``|mean| / std >= Thresholds.off_centre``
``symmetry``           (symmetry.py) a hidden layer has ``Thresholds.identical`` of its units
                       identical; zero weights at the start are named
``input_statistics``   (inputs.py) the model's input is not standardised (an info line when a
                       normalisation layer takes the first layer's output)
``exploding_gradients`` (profile.py) also: out-gradient norm or activation RMS growing
                       ``Thresholds.profile``-fold across a family of homologous hidden
                       activation layers, before NaN;
                       or ``Thresholds.profile_start``-fold at the first recorded step when the
                       weights then were too large for their activations
``loss_trend``         (loss.py) plateau or divergence of the losses given to ``Probe.step``
``blind``              (blind.py, info) what the probe could not see: nothing recorded, eval
                       mode, fused RNN gates, torch activations outside the catalog
                       (``nn.Hardswish``...), a module called in a loop (one row, the gradient
                       along the loop not profiled), a run shorter than the dead window
=====================  =================================================================

A cause is named only when the figures support it (evidence.py: weight scale against the
activation's gain^2 from the theory, zero weights at the start, a NaN in the input, update
ratios); otherwise the finding says what it sees and lists the candidate causes.  Gates,
attention weights and the model's output activation (``LayerInfo.role``) are not judged as
hidden-layer activations (a saturated output is an info line).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.probe.findings.base import (  # noqa: F401  (re-exported: the package's public names)
    SEVERITIES,
    Finding,
    Thresholds,
    _by_layer,
    _family,
    _fmt,
    _nanmean,
    _nanmedian,
    _ranges,
)
from actlab.probe.quantities.nonfinite import first_nonfinite
from actlab.probe.records import ProbeRecords

# ---------------------------------------------------------------------------- detectors
def detect(data: ProbeRecords, thresholds: Thresholds | None = None) -> list[Finding]:
    """Run every detector on the probe's records; most severe first, what it could not see last."""
    from actlab.probe.findings.blind import blind_findings
    from actlab.probe.findings.inputs import input_findings
    from actlab.probe.findings.loss import loss_findings
    from actlab.probe.findings.profile import profile_findings
    from actlab.probe.findings.symmetry import symmetry_findings

    records = data.records
    th = thresholds if thresholds is not None else Thresholds()
    out: list[Finding] = born_dead_findings(data, th)
    steps = sorted({r.step for r in records})
    blind = blind_findings(data, steps)  # info lines, listed last
    if not steps:
        return out + blind
    nf = first_nonfinite(records)
    clean = records
    if nf is not None:
        step, r, where = nf
        layer = next((l for l in data.layers if l.name == r.layer), None)
        after = None
        if layer is not None and layer.kind == "activation" and where == "forward":
            prod = _producer(data, layer)
            after = prod.name if prod is not None else None
        out.append(_nonfinite_finding(data, th, step, r, where, records, after))
        clean = [x for x in records if x.step < step]
    window_steps = [s for s in sorted({r.step for r in clean})][-max(data.settings.window_records, 1):]
    recent = [r for r in clean if r.step in set(window_steps)]
    out += symmetry_findings(data, clean, th)
    out += input_findings(data, th)
    dead = _dead_findings(data, clean, th, nf is not None)
    prof = profile_findings(data, recent, clean, th)
    grads = _gradient_findings(data, clean, recent, th, dead)
    if prof:  # one exploding finding: the profile one, which needs no NaN and no long run
        grads = [f for f in grads if f.kind != "exploding_gradients"]
    grads = _with_attenuation(data, recent, clean, th, dead, grads)
    out += prof + grads
    out += dead
    out += _saturation_findings(data, recent, th)
    out += loss_findings(data, records, th, list(out))
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: order.get(f.severity, 9)) + blind


def _nonfinite_finding(data: ProbeRecords, th: Thresholds, step: int, r, where: str, records: list,
                       after: str | None = None) -> Finding:
    from actlab.probe.findings.evidence import input_stats, max_update_ratio

    ratio = max_update_ratio(records, before=step)
    figures = {"step": step, "layer": r.layer, "order": r.order, "where": where}
    if after:
        figures["after"] = after
    if not math.isnan(ratio):
        figures["max_update_ratio_before"] = ratio
    st = input_stats(data)
    bad_input = [s for s in (st.nonfinite_steps if st is not None else []) if s <= step]
    if bad_input:
        figures["input_nonfinite_step"] = bad_input[0]
        cause = f"the input batch of step {bad_input[0]} has a NaN or Inf: the data, not the model"
        advice = "find the bad samples (torch.isfinite(x).all(1) == False) and clean or drop them"
    elif not math.isnan(ratio) and ratio > th.high_update:
        cause = (f"learning rate too high: update ratios reached {_fmt(ratio)} before step {step} (about 1e-3 is "
                 "typical), so the weights overflowed")
        advice = "lower the learning rate (try 1/10), or clip gradients (torch.nn.utils.clip_grad_norm_)"
    else:
        cause = ("a NaN or Inf in the " + ("forward pass" if where == "forward" else "gradients")
                 + "; the probe's figures do not single out a cause; candidates: overflow from a too-high learning "
                 "rate, a division by zero or log of zero, bad input")
        advice = ("lower the learning rate or clip gradients (torch.nn.utils.clip_grad_norm_), check the "
                  "inputs for NaN, and run that step under torch.autograd.detect_anomaly() to find the op")
    where_txt = f"layer {r.layer}" + (f" (the activation after {after})" if after else "")
    msg = (f"first non-finite value at step {step} in {where_txt} ({where} pass); "
           "every later figure is meaningless")
    return Finding("error", "non_finite", [r.layer], figures, cause, advice, msg)


def _chain_profile(data: ProbeRecords, records: list) -> list[tuple[str, float]]:
    chain = {l.name for l in data.layers if l.chain}
    per = _by_layer([r for r in records if r.layer in chain])
    prof = []
    for name, rs in per.items():
        v = _nanmedian([r.param_grad_rms for r in rs])
        if not math.isnan(v):
            prof.append((min(r.order for r in rs), name, v))
    return [(n, v) for _, n, v in sorted(prof)]


def _depth_profiles(data: ProbeRecords, records: list) -> list[list[tuple[str, float]]]:
    """The gradient-RMS profile along depth of each family of homologous layers (:func:`_family`)
    with at least two members, input side first; the family whose first layer is smallest
    relative to its largest comes first."""
    fams: dict[str, list[tuple[str, float]]] = {}
    for name, v in _chain_profile(data, records):
        fams.setdefault(_family(name), []).append((name, v))
    profs = [p for p in fams.values() if len(p) >= 2 and max(v for _, v in p) > 0]
    return sorted(profs, key=lambda p: p[0][1] / max(v for _, v in p))


def _gradient_findings(data: ProbeRecords, clean: list, recent: list, th: Thresholds,
                       dead: list[Finding] = ()) -> list[Finding]:
    """Vanishing and exploding gradients: a trend along depth within a family of homologous
    layers (the same layer in successive blocks), never a comparison across roles."""
    out: list[Finding] = []
    if len(_chain_profile(data, recent)) < 3:
        return out
    families = _depth_profiles(data, recent)
    for prof in families:
        vals = np.array([v for _, v in prof])
        top = int(np.argmax(vals))
        rel = vals / vals[top]
        # layers before the largest one whose gradients are a tiny fraction of it: the input side
        low = [i for i in range(top) if rel[i] < th.vanishing]
        if not (low and low[0] == 0):
            continue
        names = [prof[i][0] for i in low]
        worst = float(rel[0])
        cause, advice = _vanishing_cause(data, recent, prof[top][0], dead, th)
        sev = "error" if worst < th.vanishing / th.severe else "warning"
        fam = _family(prof[0][0])
        along = "" if fam == "#" else f" (the same layer, {fam}, along depth)"
        msg = (f"vanishing gradients: gradient RMS at {prof[0][0]} is {_fmt(worst)} of {prof[top][0]}'s{along} "
               f"(layers below {th.vanishing:g} of it: {_ranges(names)})")
        figures = {"ratio_first_to_max": worst, "first_layer": prof[0][0], "max_layer": prof[top][0],
                   "family": fam, "grad_rms": {n: v for n, v in prof}, "threshold": th.vanishing}
        out.append(Finding(sev, "vanishing_gradients", names, figures, cause, advice, msg))
        break  # the family that shows it most; its cause covers the others
    growth = _growth(data, clean)
    hit = None  # the total norm's growth over the run is judged on any model, families or not
    for prof in families:
        vals = np.array([v for _, v in prof])
        last = vals[-1]
        high = [i for i in range(len(vals) - 1) if last > 0 and vals[i] / last > th.exploding]
        if high and high[0] == 0:
            hit = (prof, vals, high)
            break
    if hit is not None or growth > th.exploding:
        prof, vals, high = hit if hit is not None else (None, None, [])
        names = [prof[i][0] for i in high] if prof is not None else []
        ratio = float(vals[0] / vals[-1]) if prof is not None else math.nan
        figures = {"ratio_first_to_last": ratio, "growth_over_run": growth,
                   "grad_rms": {n: v for n, v in prof} if prof is not None else {}, "threshold": th.exploding}
        msg = (f"exploding gradients: gradient RMS at {prof[0][0]} is {_fmt(ratio)}x that of {prof[-1][0]}"
               if prof is not None else f"exploding gradients: total gradient norm grew {_fmt(growth)}x over the run")
        if not names:
            names = [n for n, _ in _chain_profile(data, recent)[:1]]
        from actlab.probe.findings.profile import explode_cause

        cause, advice, extra = explode_cause(data, clean, th)
        figures.update(extra)
        worst = max(x for x in (ratio, growth) if not math.isnan(x))
        sev = "error" if worst > th.exploding * th.severe else "warning"
        out.append(Finding(sev, "exploding_gradients", names, figures, cause, advice, msg))
    return out


def _with_attenuation(data: ProbeRecords, recent: list, clean: list, th: Thresholds, dead: list[Finding],
                      grads: list[Finding]) -> list[Finding]:
    """Vanishing judged also from the output-gradient profile across the hidden activations
    (profile.attenuation): it adds its figures and since-when to the parameter-gradient finding,
    or is the finding where the parameter gradients do not show it (a net collapsed to the class
    prior has tiny weight gradients at every layer, the last included)."""
    from actlab.probe.findings.profile import attenuation

    att = attenuation(data, recent, clean, th)
    if att is None:
        return grads
    when = ""
    if att.since is not None:
        when = f" since step {att.since}" + (" (the first recorded step)" if att.since == att.first_step else "")
    van = [f for f in grads if f.kind == "vanishing_gradients"]
    if van:
        f = van[0]
        f.figures.update(att.figures())
        f.message += f"; the output-gradient norm at {att.first} is {_fmt(att.ratio)} of {att.last}'s{when}"
        f.cause, f.advice = _vanishing_cause(data, recent, f.figures["max_layer"], dead, th, att)
        return grads
    last = att.profile[att.last]
    names = [n for n, v in att.profile.items() if v < th.vanishing * last]
    cause, advice = _vanishing_cause(data, recent, att.last, dead, th, att)
    sev = "error" if att.ratio < th.vanishing / th.severe else "warning"
    msg = (f"vanishing gradients: the output-gradient norm at {att.first} is {_fmt(att.ratio)} of {att.last}'s "
           f"({att.per_layer:.3g}x per layer){when} (layers below {th.vanishing:g} of it: {_ranges(names)})")
    figures = {**att.figures(), "threshold": th.vanishing}
    return grads + [Finding(sev, "vanishing_gradients", names, figures, cause, advice, msg)]


def _vanishing_cause(data: ProbeRecords, recent: list, top: str, dead: list[Finding],
                     th: Thresholds, att: Any = None) -> tuple[str, str]:
    """The cause of vanishing gradients, named only where the figures show it (``att``: the
    measured output-gradient attenuation, :class:`~actlab.probe.findings.profile.Attenuation`)."""
    from actlab.probe.findings.evidence import fix_line, scale_evidence, zero_at_start

    acts = _activations_before(data, top)
    small = [s for s in acts if s.max_abs_derivative < 0.5]
    blocked = [f for f in dead if f.figures.get("dead_fraction", 0) >= 0.4]
    zero = [s.layer for s in scale_evidence(data, "zero")] or zero_at_start(data)
    sat = {name: v for name, v in _saturated_fractions(data, recent).items() if v >= th.saturated}
    tiny = scale_evidence(data, "small")
    if zero:
        return (f"zero weights (at the start) in {_ranges(zero)}: identical units, and no gradient reaches the "
                "layers before a zero layer", "initialise the weights randomly: actlab.init.critical_(model)")
    measured = f" ({att.describe()})" if att is not None else ""
    if blocked:
        also = ""
        if tiny:
            w = min(tiny, key=lambda s: s.ratio)
            also = f"; the weights are below the variance-preserving scale: {w.describe()}, {w.ratio:.2g}x it"
        return (f"dead units in {blocked[0].layers[0]} ({blocked[0].figures['dead_fraction']:.0%}) pass no "
                f"gradient to the layers before them{measured}{also}", blocked[0].advice)
    if small:
        s = small[0]
        also = ""
        if tiny:
            w = min(tiny, key=lambda s: s.ratio)
            also = f"; the weights are also below the variance-preserving scale: {w.describe()}"
        return (f"{s.name}'s derivative is at most {s.max_abs_derivative:.3g}, so each layer shrinks the "
                f"gradient{measured}; it compounds with depth and the layers near the input stop learning{also}",
                "use ReLU (with He initialisation) or tanh (with Xavier initialisation) in hidden "
                "layers, or add normalisation (BatchNorm/LayerNorm) or residual connections")
    if sat:
        worst = max(sat, key=sat.get)
        return (f"saturated units ({sat[worst]:.0%} of (sample, unit) in {worst}) have |f'| near 0 and the gradient "
                "shrinks layer by layer", "use Xavier/Glorot initialisation and normalised inputs, add "
                "BatchNorm/LayerNorm, or switch to ReLU-family activations")
    if tiny:
        s = min(tiny, key=lambda s: s.ratio)
        return (f"weights too small for this depth: {s.describe()}, {s.ratio:.2g}x it (layers: "
                f"{_ranges([x.layer for x in tiny])}); the signal shrinks by a constant factor a layer{measured}",
                "re-initialise per activation: " + fix_line(tiny))
    return ("the probe's figures do not single out a cause (weights at the variance-preserving scale, no "
            f"saturation or dead units){measured}; candidates: depth without normalisation or residual connections, "
            "an activation whose derivative is below 1 on the typical pre-activations",
            "add normalisation (BatchNorm/LayerNorm) or residual connections; check actlab.init.critical_(model)")


def _judged_for_saturation(spec) -> bool:
    """Saturation is judged where a too-large pre-activation flattens the unit against a ceiling:
    the two-sided (sigmoid, tanh) and the clipped-above (ReLU6, hard sigmoid) activations.  The
    left side of a one-sided activation (ELU, GELU, SiLU) is its resting side, where much of a
    healthy layer sits, as ReLU's units sit at 0."""
    return spec is not None and spec.backprop and spec.saturates in ("both", "right")


def _saturated_fractions(data: ProbeRecords, recent: list) -> dict[str, float]:
    """Mean saturated fraction over the window of each two-sided saturating hidden activation layer."""
    spec_of = {l.name: l.spec for l in data.layers if l.role == "hidden"}
    out = {}
    for name, rs in _by_layer(recent).items():
        spec = spec_of.get(name)
        if not _judged_for_saturation(spec):
            continue
        f = _nanmean([r.saturated for r in rs])
        if not math.isnan(f):
            out[name] = f
    return out


def _growth(data: ProbeRecords, records: list) -> float:
    per_step: dict[int, float] = {}
    for r in records:
        if not math.isnan(r.param_grad_norm):
            per_step[r.step] = per_step.get(r.step, 0.0) + r.param_grad_norm ** 2
    if len(per_step) < 4:
        return math.nan
    steps = sorted(per_step)
    k = max(1, len(steps) // 4)
    first = np.median([math.sqrt(per_step[s]) for s in steps[:k]])
    last = np.median([math.sqrt(per_step[s]) for s in steps[-k:]])
    return float(last / first) if first > 0 else math.nan


def _activations_before(data: ProbeRecords, name: str) -> list:
    lim = next((l.order for l in data.layers if l.name == name), 1 << 30)
    seen, out = set(), []
    for l in sorted(data.layers, key=lambda l: l.order):
        if l.spec is not None and l.role == "hidden" and 0 <= l.order < lim and l.spec.name not in seen:
            seen.add(l.spec.name)
            out.append(l.spec)
    return out


def _producer(data: ProbeRecords, layer) -> Any:
    """The parametrised layer that ran last before ``layer`` in the forward pass."""
    before = [l for l in data.layers if l.kind == "parametrised" and 0 <= l.order < layer.order]
    return max(before, key=lambda l: l.order) if before else None


def _dead_findings(data: ProbeRecords, records: list, th: Thresholds, had_nonfinite: bool) -> list[Finding]:
    out: list[Finding] = []
    if not data.streaks or had_nonfinite:
        return out
    n_rec = len({r.step for r in records if not math.isnan(r.inactive)})
    if n_rec == 0:
        return out
    w = min(data.settings.window_records, n_rec)
    last_step = max(r.step for r in records)
    first_step = min(r.step for r in records if not math.isnan(r.inactive))
    per = _by_layer(records)
    for name_, s in data.streaks.items():
        layer = data.layer(name_)
        n = len(s)
        if layer is None or layer.spec is None or not layer.spec.can_die:
            continue
        dead = s >= w
        frac = float(dead.mean()) if n else 0.0
        if frac < th.dead:
            continue
        since = int(last_step - (int(s[dead].max()) - 1) * data.settings.every)
        rs = per.get(layer.name, [])
        prod = _producer(data, layer)
        ratio = math.nan
        bias_mean = math.nan
        if prod is not None:
            ratio = max((r.update_ratio for r in per.get(prod.name, []) if not math.isnan(r.update_ratio)),
                        default=math.nan)
            bias_mean = prod.bias_mean
        # inactive on every recorded step, the first included: dead before any update could kill them
        born = int((s >= n_rec).sum())
        figures = {"dead_fraction": frac, "dead_units": int(dead.sum()), "units": n, "since_step": since,
                   "dead_since_first_step": born,
                   "window_steps": w * data.settings.every, "max_update_ratio": ratio, "producer": prod.name if prod else None,
                   "producer_bias_mean": bias_mean,
                   "inactive_last": rs[-1].inactive if rs else math.nan}
        name = layer.spec.name
        born_dead = since <= first_step and 2 * born >= int(dead.sum())
        if born_dead:
            # dead on the first recorded step: no update has run yet, so the learning rate is not the cause
            cause, advice = _born_dead_cause(data, layer, prod, name, first_step)
        elif not math.isnan(ratio) and ratio > th.high_update:
            cause = (f"learning rate too high: the update ratio of {prod.name} reached {_fmt(ratio)} "
                     f"(about 1e-3 is typical), pushing {name} inputs below zero for every sample")
            advice = "lower the learning rate, or use leaky ReLU / ELU, which cannot die"
        elif not math.isnan(bias_mean) and bias_mean < -0.5:
            cause = f"very negative bias in {prod.name} (mean {_fmt(bias_mean)}) keeps the pre-activations below zero"
            advice = "initialise biases at 0 (or slightly positive for ReLU), or use leaky ReLU / ELU"
        else:
            cause = (f"{name} units whose pre-activation is below zero for every input get no gradient and never "
                     f"recover; the figures do not single out why (update ratios up to {_fmt(ratio)}, below the "
                     f"{th.high_update:g} that calls the learning rate too high; bias mean {_fmt(bias_mean)}); "
                     "candidates: a transient learning-rate spike, a shift in the inputs, badly scaled weights")
            advice = "check the initialisation (He) and biases and the inputs' scale, or use leaky ReLU / ELU"
        sev = "error" if frac >= 0.4 else "warning"
        msg = (f"{frac:.0%} of {name} units in {layer.name} dead (f' = 0 for every sample) since step {since}"
               + (" (born dead: before any update)" if born_dead else "")
               + (f" with update ratio {_fmt(ratio)}" if not math.isnan(ratio) else ""))
        if n_rec < data.settings.window_records:
            # fewer recorded steps than a window: "dead" is not established, only "inactive so far";
            # deep ReLU nets at He initialisation have 10-20% such units in their last layers
            figures["short_run"] = True
            sev = "warning" if frac >= 0.4 else "info"
            msg = (f"{frac:.0%} of {name} units in {layer.name} inactive (f' = 0 for every sample) on all {n_rec} "
                   f"recorded steps, fewer than the dead window ({data.settings.window_records})")
        out.append(Finding(sev, "dead_units", [layer.name], figures, cause, advice, msg))
    return out


def _saturation_findings(data: ProbeRecords, recent: list, th: Thresholds) -> list[Finding]:
    out: list[Finding] = []
    per = _by_layer(recent)
    sat_layers, sat_figs, off_layers, off_figs = [], {}, [], {}
    # gates and attention weights are judged by their use, not as hidden-layer activations
    spec_of = {l.name: l.spec for l in data.layers if l.role == "hidden"}
    for name, rs in sorted(per.items(), key=lambda kv: kv[1][0].order):
        spec = spec_of.get(name)
        if not _judged_for_saturation(spec):
            continue
        f = _nanmean([r.saturated for r in rs])
        if not math.isnan(f) and f >= th.saturated:
            sat_layers.append(name)
            sat_figs[name] = f
        if not spec.zero_centred:
            ratios = [abs(r.mean) / r.std for r in rs if r.std > 0 and not math.isnan(r.mean)]
            v = _nanmedian(ratios)
            if not math.isnan(v) and v >= th.off_centre:
                off_layers.append(name)
                off_figs[name] = v
    if sat_layers:
        specs = sorted({spec_of[n].name for n in sat_layers})
        worst = max(sat_figs.values())
        figures = {"saturated_fraction": sat_figs, "threshold": th.saturated,
                   "derivative_below": f"{data.settings.saturation:g} * max|f'|"}
        cause = (f"pre-activations too large for {', '.join(specs)}: units sit on the flat parts where f' is "
                 f"below {data.settings.saturation:g} of its maximum; " + _saturation_why(data, recent, th, sat_layers))
        advice = ("use Xavier/Glorot initialisation (gain 5/3 for tanh), normalise the inputs, add "
                  "BatchNorm/LayerNorm before the activation, or use a non-saturating activation (ReLU family)")
        msg = (f"{', '.join(specs)} saturated in {_ranges(sat_layers)}: up to {worst:.0%} of (sample, unit) have "
               f"|f'| < {data.settings.saturation:g} max|f'|")
        sev = "error" if worst >= 0.6 else "warning"
        out.append(Finding(sev, "saturation", sat_layers, figures, cause, advice, msg))
    if off_layers:
        specs = sorted({spec_of[n].name for n in off_layers})
        worst = max(off_figs.values())
        figures = {"mean_over_std": off_figs, "threshold": th.off_centre}
        cause = (f"{', '.join(specs)} outputs are all positive, so the next layer's weight gradients share one "
                 "sign per unit and updates zig-zag")
        advice = "prefer tanh (zero-centred) in hidden layers, or normalise activations (BatchNorm/LayerNorm)"
        msg = f"{', '.join(specs)} outputs not zero-centred in {_ranges(off_layers)} (|mean|/std up to {worst:.2g})"
        out.append(Finding("info", "not_zero_centred", off_layers, figures, cause, advice, msg))
    out += _output_saturation(data, per, th)
    return out


def _output_saturation(data: ProbeRecords, per: dict, th: Thresholds) -> list[Finding]:
    """A saturating activation that is the model's output (a sigmoid on the logits): said, not
    warned about.  Its saturation is confident predictions; whether that stalls learning depends
    on the loss, which the probe does not see."""
    figs = {}
    for l in data.layers:
        if l.role == "output" and _judged_for_saturation(l.spec) and l.name in per:
            f = _nanmean([r.saturated for r in per[l.name]])
            if not math.isnan(f) and f >= th.saturated:
                figs[l.name] = f
    if not figs:
        return []
    names = sorted(figs, key=lambda n: per[n][0].order)
    specs = sorted({l.spec.name for l in data.layers if l.name in figs})
    msg = (f"{', '.join(specs)} at the model's output saturated in {_ranges(names)}: up to {max(figs.values()):.0%} "
           "of (sample, unit) (confident outputs; not judged as a hidden layer)")
    cause = ("an output activation saturates when the model is confident; a loss with a log on it (binary cross "
             "entropy) undoes the flat derivative, so the gradient stays p - y")
    advice = ("nothing if the loss is (binary) cross entropy: prefer BCEWithLogitsLoss on the logits for stability; "
              "with a squared error, wrongly saturated outputs learn slowly")
    return [Finding("info", "saturation", names, {"saturated_fraction": figs, "threshold": th.saturated, "role": "output"},
                    cause, advice, msg)]


def _saturation_why(data: ProbeRecords, recent: list, th: Thresholds, sat_layers: list[str]) -> str:
    from actlab.probe.findings.evidence import input_stats, max_update_ratio, weight_scales

    why = []
    # only the weights that feed the saturated layers are evidence (a large layer elsewhere is not)
    large = [s for s in weight_scales(data) if s.feeds in sat_layers and s.verdict == "large"]
    if large:
        s = max(large, key=lambda s: s.ratio)
        why.append(f"the weights are too large: {s.describe()}, {s.ratio:.3g}x it")
    st = input_stats(data)
    if st is not None and st.rms > th.input_scale:
        why.append(f"the inputs are not standardised (RMS {_fmt(st.rms)})")
    ratio = max_update_ratio(recent)
    if not math.isnan(ratio) and ratio > th.high_update:
        why.append(f"the learning rate is high (update ratio {_fmt(ratio)})")
    if why:
        return "; ".join(why)
    return "candidates: too-large initial weights, unnormalised inputs or a high learning rate"


def _small_before(data: ProbeRecords, layer) -> list:
    """The weight layers up to ``layer`` (included) whose scale is below the variance-preserving one."""
    from actlab.probe.findings.evidence import scale_evidence

    order = {l.name: l.order for l in data.layers}
    return [s for s in scale_evidence(data, "small") if 0 <= order.get(s.layer, -1) <= layer.order]


def _born_dead_cause(data: ProbeRecords, layer, prod, name: str, first_step: int) -> tuple[str, str]:
    """Why units are dead from the first recorded step on, from the bias and weight scale before them."""
    from actlab.probe.findings.evidence import fix_line

    born = f"born dead (inactive for every input from step {first_step}, before any update)"
    if prod is not None and not math.isnan(prod.bias_mean) and prod.bias_mean < -0.5:
        return (f"{born}: very negative bias in {prod.name} (mean {_fmt(prod.bias_mean)}) keeps the "
                f"pre-activations below zero", "initialise biases at 0 (or slightly positive for ReLU), or use "
                "leaky ReLU / ELU")
    small = _small_before(data, layer)
    if small:
        # the layer that feeds the dead units, where it is one of the small ones
        s = next((x for x in small if prod is not None and x.layer == prod.name), min(small, key=lambda s: s.ratio))
        return (f"{born}: weights below the variance-preserving scale: {s.describe()}, {s.ratio:.2g}x it (layers: "
                f"{_ranges([x.layer for x in small])}); the input's signal shrinks about {s.ratio:.2g}x in variance "
                f"per layer until each unit's sign is set by its bias, and the {name} units with a negative bias "
                "are below zero for every input", "re-initialise per activation: " + fix_line(small))
    return (f"{born}: the figures do not single out why (bias mean {_fmt(prod.bias_mean if prod else math.nan)}, "
            "weights at the variance-preserving scale); candidates: badly scaled or shifted inputs, a bias or "
            "weight pattern that the mean and scale do not show",
            "check the inputs' scale and the initialisation (actlab.init.critical_(model)), or use leaky ReLU / ELU")


def _born_dead_why(data: ProbeRecords, names: list[str]) -> str:
    for n in names:
        layer = data.layer(n)
        prod = _producer(data, layer) if layer is not None else None
        if prod is not None and not math.isnan(prod.bias_mean) and prod.bias_mean < -0.5:
            return f"very negative bias in {prod.name} (mean {_fmt(prod.bias_mean)})"
    for n in names:
        layer = data.layer(n)
        small = _small_before(data, layer) if layer is not None else []
        if small:
            s = min(small, key=lambda s: s.ratio)
            return (f"weights below the variance-preserving scale: {s.describe()}, {s.ratio:.2g}x it; the signal "
                    "shrinks layer by layer until each unit's sign is set by its bias")
    return "candidates: very negative biases, too-small or badly scaled weights, or unnormalised inputs"


def born_dead_findings(data: ProbeRecords, th: Thresholds) -> list[Finding]:
    """Findings for units dead on the first batch (see :meth:`Probe.born_dead`)."""
    fractions = data.born_dead
    spec_of = {l.name: l.spec for l in data.layers}
    bad = {n: f for n, f in fractions.items() if f >= th.born_dead and spec_of.get(n) is not None}
    if not bad:
        return []
    worst = max(bad.values())
    names = list(bad)
    specs = sorted({spec_of[n].name for n in names})
    cause = (f"{', '.join(specs)} pre-activations below zero for every sample of the batch at initialisation: "
             + _born_dead_why(data, names))
    advice = "initialise biases at 0, use He initialisation and normalised inputs, or use leaky ReLU / ELU"
    msg = f"born dead: up to {worst:.0%} of units in {_ranges(names)} have f' = 0 for every sample of the first batch"
    sev = "error" if worst >= 0.4 else "warning"
    return [Finding(sev, "born_dead", names, {"dead_fraction": bad, "threshold": th.born_dead}, cause, advice, msg)]
