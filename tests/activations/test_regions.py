"""The catalog's two rules on f' (inactive, saturated): one declaration each, read by every floor."""

from __future__ import annotations

import math

import torch

from actlab.activations import get
from actlab.activations.regions import SATURATION_TOL, inactive_units


def test_inactive_units_is_f_prime_zero_on_every_sample_and_nan_is_not_inactive():
    d = torch.tensor([[0.0, 0.0, 1.0, math.nan], [0.0, 0.5, 0.0, 0.0]])
    assert inactive_units(d).tolist() == [True, False, False, False]
    # stacked models (models, samples, units), samples on dim 1
    assert inactive_units(torch.stack([d, torch.zeros_like(d)]), sample_dims=1).tolist() == [
        [True, False, False, False], [True, True, True, True]]
    relu = get("relu")
    z = torch.tensor([[-1.0, 2.0], [-3.0, -0.5]])
    p = {**relu.defaults(), "training": False}
    assert inactive_units(relu.derivative(z, relu.forward(z, p), p).abs()).tolist() == [True, False]


def test_every_floor_reads_the_one_saturation_constant_and_inactive_rule():
    import inspect

    from actlab.plot.activations import saturated_regions
    from actlab.probe.quantities import SATURATION_TOL as probe_tol
    from actlab.probe.quantities import inactive
    from actlab.sweep.spec import Record
    from actlab.theory import dying

    assert probe_tol is SATURATION_TOL
    assert inspect.signature(saturated_regions).parameters["fraction"].default is SATURATION_TOL
    assert Record().saturation_tol is SATURATION_TOL
    assert inactive.inactive_units is inactive_units
    assert dying.inactive_units is inactive_units
