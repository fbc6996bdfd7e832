"""Symmetry: every unit of a layer identical (zero or constant initialisation).

Units that start identical compute the same function and get the same gradient, so plain
gradient descent keeps them identical forever: the layer has one unit's worth of capacity.
Read from the weights themselves (rows of a Linear weight, filters of a Conv kernel, with the
biases), at the time the findings are asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from actlab.probe.findings import Finding, _ranges
from actlab.probe.findings.evidence import zero_at_start

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.probe import Probe

# rows equal to this relative tolerance are identical (float32 updates of identical rows stay
# bit-identical, so real symmetry gives 0; random rows differ by O(1))
_TOL = 1e-6


def _identical_units(module: torch.nn.Module) -> tuple[bool, bool] | None:
    """``(identical, zero)`` for a module with a weight matrix/kernel of at least 2 output units."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() < 2 or w.shape[0] < 2:
        return None
    rows = w.detach().reshape(w.shape[0], -1).float()
    b = getattr(module, "bias", None)
    if isinstance(b, torch.Tensor) and b.shape == (w.shape[0],):
        rows = torch.cat([rows, b.detach().float()[:, None]], 1)
    scale = float(rows.abs().amax())
    if scale == 0.0:
        return True, True
    spread = float((rows - rows[:1]).abs().amax())
    return spread <= _TOL * scale, False


def symmetry_findings(probe: "Probe") -> list[Finding]:
    modules = dict(probe.model.named_modules())
    chain = sorted((l for l in probe.layers if l.chain and l.order < 1 << 30), key=lambda l: l.order)
    # the last layer's units differ through their targets' gradients: only hidden layers can be stuck
    zero, const = [], []
    born_zero = set(zero_at_start(probe))
    for layer in chain[:-1]:
        m = modules.get(layer.name)
        got = _identical_units(m) if m is not None else None
        if got is None or not got[0]:
            continue
        (zero if got[1] or layer.name in born_zero else const).append(layer.name)
    if not zero and not const:
        return []
    names = zero + const
    figures = {"zero_weight_layers": zero, "identical_unit_layers": const}
    if zero:
        cause = (f"zero weights (at the first recorded step) in {_ranges(zero)}: every unit computes the same function and gets the same "
                 "gradient, so the units stay identical (and, behind a zero layer, no gradient reaches the "
                 "layers before it)")
    else:
        cause = (f"identical units in {_ranges(const)}: every unit has the same weights (a constant "
                 "initialisation), so all get the same gradient and stay identical")
    advice = ("initialise weights randomly (actlab.init.critical_(model), or He for ReLU / Xavier for tanh); "
              "only biases may start constant")
    msg = (f"symmetry: all units identical in {_ranges(names)}"
           + (" (all weights 0)" if zero and not const else ""))
    return [Finding("error", "symmetry", names, figures, cause, advice, msg)]
