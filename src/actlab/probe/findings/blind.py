"""Say when blind: what the probe could not see, as info findings, so that an empty list never
reads as "nothing looks wrong" when nothing was seen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actlab.probe.findings.base import Finding

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.records import ProbeRecords


def blind_findings(data: "ProbeRecords", steps: list[int]) -> list[Finding]:
    out: list[Finding] = []
    seen = data.seen
    ev, tr = seen.get("eval_forwards", 0), seen.get("train_forwards", 0)
    if not steps:
        reasons = []
        if ev and not tr:
            reasons.append(f"the model ran {ev} forward(s), all in eval mode; the probe records "
                           "training-mode forwards only (call model.train())")
        if seen.get("compiled", False):
            reasons.append("the model is compiled (torch.compile) and no training forward of it has run since the "
                           "probe was attached")
        if not reasons:
            reasons.append("no training-mode forward of the model has run since the probe was attached "
                           "(a model called as another module's submodule is seen only while that module runs)")
        out.append(Finding("info", "blind", [], {"eval_forwards": ev,
                                                  "train_forwards": tr},
                           "; ".join(reasons), "train the model (in train mode) with the probe attached",
                           "nothing recorded: no finding means nothing was seen, not that nothing is wrong"))
        return out
    fused = list(seen.get("fused_rnn", []))
    if fused:
        out.append(Finding("info", "blind", fused, {"modules": fused},
                           "torch's fused recurrent kernels compute their gates and activations internally",
                           "to judge the gates, write the cell with activation modules (or use nn.LSTMCell "
                           "with your own gates)",
                           f"the gates and activations inside fused {', '.join(fused)} are not visible: only their "
                           "parameter gradients are recorded"))
    if seen.get("compiled", False):
        out.append(Finding("info", "blind", [], {"compiled": True},
                           "a compiled forward runs the compiler's kernels: the probe sees an activation function "
                           "only where the compiler keeps the call (with the inductor backend, tensor methods "
                           "such as x.tanh() are compiled away)",
                           "use activation modules (nn.Tanh) inside compiled code, or probe the model uncompiled",
                           "the model is compiled (torch.compile): activation modules are probed; activation "
                           "functions called inside its forward appear only if listed in the table"))
    odd = list(seen.get("uncatalogued", []))
    if odd:
        out.append(Finding("info", "blind", odd, {"modules": odd},
                           "the catalog has no entry for these activations, so the probe cannot say when they "
                           "saturate or die",
                           "their neighbours' gradient norms still show vanishing or exploding gradients around them",
                           f"not judged: {', '.join(odd)}: activation modules outside actlab's catalog (no "
                           "saturation, inactive or dead figures for them)"))
    looped = dict(seen.get("looped", {}))
    if looped:
        names = list(looped)
        what = ", ".join(f"{n} ({k} calls)" for n, k in looped.items())
        out.append(Finding("info", "blind", names, {"calls_per_forward": looped},
                           "a module called in a loop (a recurrent cell over time, a layer shared across depth) "
                           "is one row: its calls are merged, so the gradient along the loop is not profiled",
                           "vanishing or exploding through time shows in the loss and in the layers before and "
                           "after the loop; call the cell as separate modules to see it per step",
                           f"one row per loop: {what} per forward; the gradient along the loop is not profiled, so "
                           "vanishing or exploding through time is not judged"))
    span = steps[-1] + 1
    if span < data.settings.window:
        out.append(Finding("info", "blind", [], {"steps": span, "recorded": len(steps), "window": data.settings.window},
                           "a unit is dead only after a full window of inactivity",
                           f"run at least {data.settings.window} steps, or pass a smaller window= to Probe",
                           f"the run ({span} steps) is shorter than the dead window ({data.settings.window} "
                           "steps): units "
                           f"inactive on all {len(steps)} recorded steps are reported, the table's dead column "
                           "counts full windows only"))
    return out
