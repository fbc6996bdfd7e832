"""What a probe quantity is: its key, schedule, on-device reduction, record fields and plot.

Each quantity lives in its own file next to this one and is declared once, as a
:class:`Quantity`.  The reduction is a plain function on tensors that anyone can call (the lab's
comparisons, the sweep engine on its stacked tensors, the tests); the probe either runs it itself
(``probe="generic"``) or, for the activation statistics that must cost next to nothing on every
step, computes the same numbers in its fused pass (``probe="fused"``, see
:mod:`actlab.probe.stats` and :mod:`actlab.probe.fused`; a test holds the two equal).

Adding a quantity is one new file in this package that defines ``QUANTITY``: the record gets its
fields, the exports their columns and :func:`actlab.probe.plots.plot` its figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from actlab.activations.spec import ActivationSpec

# A plot reads :class:`actlab.probe.records.ProbeRecords` (which is built from the quantities:
# named here as a string, not imported, so no import circle).
_Records = Any

#: When a quantity is measured.  ``"step"``: every recorded step (``Probe(every=...)``);
#: ``"out_grads"``: every ``out_grads_every`` steps; ``"update"``: every ``update_every`` steps;
#: ``"window"``: derived from the steps of the last ``window`` steps.
Schedule = Literal["step", "out_grads", "update", "window"]
#: What the reduction reads: a layer's activation output, an activation layer's input (its
#: pre-activations), the gradient with respect to a layer's output, a layer's parameters, their
#: gradients, or their change over an optimizer step.
Target = Literal["activation", "pre_activation", "output_grad", "parameters", "param_grads", "update"]


@dataclass(frozen=True)
class Field:
    """One column of :class:`~actlab.probe.records.LayerRecord` (NaN/False: not measured there)."""

    name: str
    doc: str
    type: type = float
    default: Any = math.nan


@dataclass(frozen=True)
class Quantity:
    """A probe statistic, declared once.

    Attributes:
        key: short name (also the plot kind when :attr:`plot` is set).
        doc: what it measures, in one sentence.
        schedule: when it is measured (see :data:`Schedule`).
        target: what its reduction reads (see :data:`Target`).
        fields: the record fields it fills (none for a quantity that is not one number per layer
            and step: the histogram's latest counts are in ``ProbeRecords.histograms``).
        reduce: the on-device reduction, a plain function on tensors.
        probe: ``"fused"``: the probe computes it in its fused activation pass (same numbers);
            ``"generic"``: the probe calls :attr:`reduce` itself on the schedule.
        plot: draws the quantity from records on a matplotlib axis (``None``: no figure).
        order: where its fields go in the record (lower first; a new quantity's default puts
            them at the end).
        default: measured unless ``Probe(quantities=...)`` leaves it out; ``False``: only when
            asked for (a costlier figure that only some readers need).
    """

    key: str
    doc: str
    schedule: Schedule
    target: Target
    fields: tuple[Field, ...]
    reduce: Callable[..., Any]
    probe: Literal["fused", "generic"] = "fused"
    plot: Callable[[_Records, Any], None] | None = None
    order: int = 100
    default: bool = True


def derivative(spec: ActivationSpec, x: Tensor, params: dict | None = None) -> Tensor:
    """``f'(x)`` of ``spec`` at its pre-activation ``x`` (the spec's analytic derivative, no graph).

    Args:
        spec: the layer's activation.
        x: pre-activations.
        params: hyperparameters (defaults where missing); tensors (learnable slopes) broadcast.
    """
    p = dict(spec.defaults())
    p.update(params or {})
    p["training"] = False
    with torch.no_grad():
        return spec.derivative(x, spec.forward(x, p), p)


def module_derivative(module: Any, x: Tensor) -> Tensor:
    """``f'(x)`` of an activation module (actlab's or torch's) at ``x``, with its current
    hyperparameters; a learnable per-channel one (PReLU's slope) broadcasts along dim 1.

    Raises:
        ValueError: ``module`` is not an activation the catalog knows.
    """
    from actlab.activations import spec_for_module

    found = spec_for_module(module)
    if found is None:
        raise ValueError(f"{type(module).__name__} is not an activation module the catalog knows")
    spec, params = found
    shaped = {}
    for k, v in params.items():
        if isinstance(v, Tensor) and v.numel() > 1 and x.dim() >= 2:
            v = v.view(-1, *([1] * (x.dim() - 2)))
        shaped[k] = v
    return derivative(spec, x, shaped)


def series_plot(field: str, ylabel: str, *, log: bool = False, percent: bool = False,
                only: Callable[[Any], bool] = lambda r: True) -> Callable[[_Records, Any], None]:
    """A plot of one record field over steps, one line per layer, input side dark."""

    def draw(data: _Records, ax: Any) -> None:
        series = data.series(field, only)
        for (name, (steps, values)), c in zip(series.items(), colours(len(series))):
            ax.plot(steps, [100 * v for v in values] if percent else values, color=c, label=name, lw=1.2)
        if log:
            ax.set_yscale("log")
        if percent:
            ax.set_ylim(-2, 102)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)

    return draw


def colours(n: int) -> list:
    """``n`` colours from dark (input side) to light (output side)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]
