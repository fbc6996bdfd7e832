"""Say when blind: what the probe could not see, as info findings, so that an empty list never
reads as "nothing looks wrong" when nothing was seen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from actlab.probe.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.probe import Probe

_FUSED = (nn.LSTM, nn.GRU, nn.RNN)


def _compiled(model: nn.Module) -> bool:
    return type(model).__name__ == "OptimizedModule" or getattr(model, "_compiled_call_impl", None) is not None


def blind_findings(probe: "Probe", steps: list[int]) -> list[Finding]:
    out: list[Finding] = []
    if not steps:
        reasons = []
        if probe._eval_forwards and not probe._train_forwards:
            reasons.append(f"the model ran {probe._eval_forwards} forward(s), all in eval mode; the probe records "
                           "training-mode forwards only (call model.train())")
        if _compiled(probe.model):
            reasons.append("the model is compiled (torch.compile) and no training forward of it has run since the "
                           "probe was attached")
        if not reasons:
            reasons.append("no training-mode forward of the model has run since the probe was attached "
                           "(a model called as another module's submodule is seen only while that module runs)")
        out.append(Finding("info", "blind", [], {"eval_forwards": probe._eval_forwards,
                                                  "train_forwards": probe._train_forwards},
                           "; ".join(reasons), "train the model (in train mode) with the probe attached",
                           "nothing recorded: no finding means nothing was seen, not that nothing is wrong"))
        return out
    if probe._eval_forwards:
        out.append(Finding("info", "blind", [], {"eval_forwards": probe._eval_forwards},
                           "the probe records training-mode forwards only",
                           "nothing to do for evaluation; call model.train() for forwards you want judged",
                           f"{probe._eval_forwards} eval-mode forward(s) were not recorded"))
    fused = [name for name, m in probe.model.named_modules() if isinstance(m, _FUSED)]
    if fused:
        out.append(Finding("info", "blind", fused, {"modules": fused},
                           "torch's fused recurrent kernels compute the gates internally",
                           "to judge the gates, write the cell with activation modules (or use nn.LSTMCell "
                           "with your own gates)",
                           f"gates inside fused {', '.join(fused)} are not visible: only their parameter gradients "
                           "are recorded"))
    span = steps[-1] + 1
    if span < probe.window:
        out.append(Finding("info", "blind", [], {"steps": span, "recorded": len(steps), "window": probe.window},
                           "a unit is dead only after a full window of inactivity",
                           f"run at least {probe.window} steps, or pass a smaller window= to Probe",
                           f"the run ({span} steps) is shorter than the dead window ({probe.window} steps): units "
                           f"inactive on all {len(steps)} recorded steps are reported, the table's dead column "
                           "counts full windows only"))
    return out
