"""Symmetry: the units of a layer identical (zero or constant initialisation).

Units that start identical compute the same function and get the same gradient, so plain
gradient descent keeps them identical for ever: the layer has one unit's worth of capacity.
Read from the ``identical_units`` quantity (:mod:`actlab.probe.quantities.identical_units`) at
its last measurement, and from the weight scale at the first recorded step (zero weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actlab.probe.findings.base import Finding, Thresholds, _by_layer, _ranges
from actlab.probe.findings.evidence import zero_at_start

if TYPE_CHECKING:  # pragma: no cover
    from actlab.probe.records import ProbeRecords


def symmetry_findings(data: "ProbeRecords", records: list, th: Thresholds) -> list[Finding]:
    chain = sorted((l for l in data.layers if l.chain and l.order >= 0), key=lambda l: l.order)
    # the last layer's units differ through their targets' gradients: only hidden layers can be stuck
    hidden = {l.name for l in chain[:-1]}
    per = _by_layer([r for r in records if r.layer in hidden and r.identical_units == r.identical_units])
    shares = {name: rs[-1].identical_units for name, rs in per.items()}
    stuck = [n for n in (l.name for l in chain) if shares.get(n, 0.0) >= th.identical]
    if not stuck:
        return []
    born_zero = set(zero_at_start(data))
    zero = [n for n in stuck if n in born_zero]
    const = [n for n in stuck if n not in born_zero]
    figures = {"identical_units": {n: shares[n] for n in stuck}, "zero_weight_layers": zero,
               "threshold": th.identical}
    if zero:
        cause = (f"zero weights (at the first recorded step) in {_ranges(zero)}: every unit computes the same "
                 "function and gets the same gradient, so the units stay identical (and, behind a zero layer, no "
                 "gradient reaches the layers before it)")
    else:
        cause = (f"identical units in {_ranges(const)}: every unit has the same weights (a constant "
                 "initialisation), so all get the same gradient and stay identical")
    advice = ("initialise weights randomly (actlab.init.critical_(model), or He for ReLU / Xavier for tanh); "
              "only biases may start constant")
    worst = max(shares[n] for n in stuck)
    msg = f"symmetry: {worst:.0%} of the units identical in {_ranges(stuck)}" + (" (all weights 0 at the start)"
                                                                              if zero and not const else "")
    return [Finding("error", "symmetry", stuck, figures, cause, advice, msg)]
