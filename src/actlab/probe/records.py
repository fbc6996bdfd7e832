"""Typed records of what the probe measured: what findings, exports and plots read.

:class:`LayerRecord` has one field per :class:`~actlab.probe.quantities.base.Field` of every
quantity (so a new quantity file adds its columns here without an edit), after the fields that
say which layer and step it is.  :class:`ProbeRecords` is everything a reader needs, brought to
the host once: the settings, the layers, the records, per-parameter gradient norms, each unit's
inactive streak and the born-dead fractions.  Nothing here touches the probe's internals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable

import numpy as np

from actlab.activations.spec import ActivationSpec
from actlab.probe.quantities import QUANTITIES

_IDENTITY = (
    ("step", int, "training step (0-based)"),
    ("layer", str, "qualified module name; functional activations are ``\"<caller>:<activation>\"``"),
    ("order", int, "position of the layer in the forward pass (execution order; -1: not seen)"),
    ("kind", str, "``\"activation\"`` or ``\"parametrised\"``"),
    ("module", str, "module class name (function name for functional activations)"),
    ("activation", str, "catalog name of the layer's activation (``\"\"`` for parametrised layers)"),
)
#: Every quantity field, in record order.
QUANTITY_FIELDS = tuple(f for q in QUANTITIES for f in q.fields)


def _doc() -> str:
    lines = ["What the probe measured for one layer at one recorded step (NaN: not measured there).",
             "", "Attributes:"]
    lines += [f"    {n}: {d}" for n, _, d in _IDENTITY]
    lines += [f"    {f.name}: {f.doc}" for f in QUANTITY_FIELDS]
    return "\n".join(lines)


LayerRecord = make_dataclass(
    "LayerRecord",
    [(n, t) for n, t, _ in _IDENTITY] + [(f.name, f.type, field(default=f.default)) for f in QUANTITY_FIELDS],
    namespace={"__doc__": _doc(), "__module__": __name__},
)


@dataclass(frozen=True)
class LayerInfo:
    """A layer the probe watched.

    Attributes:
        name: qualified module name (as in the records).
        kind: ``"activation"`` or ``"parametrised"``.
        module: module class (or function) name.
        spec: the layer's activation from the catalog (``None`` for parametrised layers).
        order: position in the forward pass (``-1``: never ran while recording).
        chain: has a weight matrix or kernel: part of the depth profile of gradients.
        param_names: its trainable parameters.
        numel: their number of entries.
        bias_mean: the mean of its ``bias`` when the records were read (NaN: none).
        role: how an activation's output is used: ``"hidden"`` (feeds a weight), ``"gate"``
            (only multiplies other signals), ``"attention"`` (only meets signals in a matmul) or
            ``"output"`` (it is the model's output).
        sigma_w2: ``fan_in * mean(W^2)`` of its weight matrix/kernel when the records were read
            (the mean-field variance scale; NaN: no such weight).
        sigma_w2_start: the same at the first recorded step.
    """

    name: str
    kind: str
    module: str
    spec: ActivationSpec | None
    order: int
    chain: bool
    param_names: tuple[str, ...]
    numel: int
    bias_mean: float = math.nan
    role: str = "hidden"
    sigma_w2: float = math.nan
    sigma_w2_start: float = math.nan

    @property
    def activation(self) -> str:
        return self.spec.name if self.spec is not None else ""


@dataclass(frozen=True)
class Settings:
    """The probe's settings that readers need (see :class:`~actlab.probe.Probe`)."""

    model: str
    every: int
    window: int
    saturation: float
    update_every: int
    out_grads_every: int

    @property
    def window_records(self) -> int:
        """Recorded steps in a window: ``ceil(window / every)``."""
        return -(-self.window // self.every)


@dataclass(frozen=True)
class Histogram:
    """One layer's pre-activations at one step, counted in equal bins over ``[-r, r]``
    (:mod:`actlab.probe.quantities.histogram`).

    Attributes:
        step: the recorded step.
        r: half-range of the bins.
        counts: int64 counts, one per bin, from ``-r`` up.
    """

    step: int
    r: float
    counts: np.ndarray

    @property
    def edges(self) -> np.ndarray:
        """The ``len(counts) + 1`` bin edges."""
        return np.linspace(-self.r, self.r, len(self.counts) + 1)


@dataclass
class ProbeRecords:
    """Everything the probe measured, on the host.

    Attributes:
        settings: the probe's settings.
        layers: the watched layers, in forward order.
        records: one :class:`LayerRecord` per layer and recorded step, step then forward order.
        param_norms: ``{step: {parameter name: gradient norm}}``.
        streaks: ``{layer: per-unit count of recorded steps inactive in a row}`` at the last step.
        born_dead: ``{layer: fraction of units dead on the batch}`` from
            :meth:`Probe.born_dead` (empty when it was not run).
        inputs: ``(step, mean, mean square)`` of the model's first floating-point input on
            each recorded step (what the first layer receives).
        losses: ``(step, loss)`` as given to :meth:`Probe.step`.
        seen: what the probe could and could not see: ``eval_forwards``, ``train_forwards``,
            ``compiled`` (the model is compiled), ``fused_rnn`` (fused recurrent modules).
        histograms: ``{activation layer: Histogram}``, the latest of each layer's pre-activations,
            in forward order (empty unless the ``"histogram"`` quantity is on:
            ``Probe(quantities=[..., "histogram"])`` or ``Probe.enable("histogram")``).
    """

    settings: Settings
    layers: list[LayerInfo]
    records: list
    param_norms: dict[int, dict[str, float]] = field(default_factory=dict)
    streaks: dict[str, np.ndarray] = field(default_factory=dict)
    born_dead: dict[str, float] = field(default_factory=dict)
    inputs: list[tuple[int, float, float]] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)

    def layer(self, name: str) -> LayerInfo | None:
        """The layer called ``name``, or ``None``."""
        return next((l for l in self.layers if l.name == name), None)

    def steps(self) -> list[int]:
        """The recorded steps."""
        return sorted({r.step for r in self.records})

    def series(self, name: str, only: Callable[[Any], bool] = lambda r: True) -> dict[str, tuple[list, list]]:
        """``{layer: (steps, values)}`` of one record field (NaN skipped), in forward order."""
        out: dict[str, tuple[list, list, int]] = {}
        for r in self.records:
            v = getattr(r, name)
            if not only(r) or v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            s, vals, _ = out.setdefault(r.layer, ([], [], r.order))
            s.append(r.step)
            vals.append(v)
        return {k: (s, v) for k, (s, v, _) in sorted(out.items(), key=lambda kv: kv[1][2])}

    def layer_grad_norms(self, step: int | None = None, *, which: str = "params") -> dict[str, float]:
        """Gradient norm of each layer at ``step`` (default: the last step with gradients).

        Args:
            step: a recorded step; ``None`` takes the last one that had a backward pass.
            which: ``"params"``: norm of the layer's own parameter gradients, weights and bias
                together (parametrised layers); ``"weights"``: the same of its weights alone, no
                bias (what mean-field theory predicts); ``"output"``: norm of the loss gradient
                with respect to the layer's output (every observed layer); ``"rms"``: the
                parameter gradient norm over ``sqrt(numel)``.

        Returns:
            ``{layer name: norm}`` in forward (execution) order, the input side first.
        """
        name = {"params": "param_grad_norm", "weights": "weight_grad_norm", "output": "out_grad_norm",
                "rms": "param_grad_rms"}.get(which)
        if name is None:
            raise ValueError(f"which must be 'params', 'weights', 'output' or 'rms', got {which!r}")
        recs = self.records
        if step is None:
            have = [r.step for r in recs if not math.isnan(getattr(r, name))]
            if not have:
                return {}
            step = max(have)
        got = sorted((r for r in recs if r.step == step and not math.isnan(getattr(r, name))), key=lambda r: r.order)
        if not got and step not in {r.step for r in recs}:
            raise ValueError(f"step {step} was not recorded; recorded steps: {self.steps()[:10]}...")
        return {r.layer: getattr(r, name) for r in got}

    def param_grad_norms(self, step: int | None = None) -> dict[str, float]:
        """Gradient norm of each parameter tensor at ``step`` (default: the last backward)."""
        if not self.param_norms:
            return {}
        if step is None:
            step = max(self.param_norms)
        if step not in self.param_norms:
            raise ValueError(f"no gradients recorded at step {step}; steps with gradients: "
                             f"{sorted(self.param_norms)[:10]}")
        return dict(self.param_norms[step])


__all__ = ["Histogram", "LayerInfo", "LayerRecord", "ProbeRecords", "QUANTITY_FIELDS", "Settings"]
