"""The spec's declared structure, read through its methods, agrees with what f does: group size
(inputs per output), the leaky slope of rectifiers, and the one backward on the spec."""

from __future__ import annotations

import pytest
import torch
from catalog_cases import SPECS, param_sets, resolved, spec_param_cases

from actlab.activations import apply, get


@pytest.mark.parametrize(("spec", "params"), spec_param_cases())
def test_group_size_is_inputs_per_output(spec, params):
    k = spec.group_size(resolved(spec, params))
    x = torch.randn(3, 6 * k, dtype=torch.float64)
    with torch.no_grad():
        y = apply(spec, x, **params)
    assert y.shape[-1] * k == x.shape[-1]
    if spec.group is None:
        assert k == 1
    else:
        assert not spec.elementwise


def test_group_size_takes_the_default_when_not_given():
    maxout = get("maxout")
    assert maxout.group_size({}) == maxout.group_size() == maxout.defaults()["pieces"]
    assert maxout.group_size({"pieces": 3}) == 3
    assert get("relu").group_size({"pieces": 3}) == 1


@pytest.mark.parametrize("spec", [s for s in SPECS if s.leak is not None], ids=lambda s: s.name)
def test_leaky_slope_is_the_slope_for_negative_x(spec):
    for params in param_sets(spec):
        p = resolved(spec, params)
        x = torch.tensor([-3.0, -1.0], dtype=torch.float64)
        with torch.no_grad():
            y = spec.forward(x, p)
        measured = float((y[1] - y[0]) / (x[1] - x[0]))
        assert spec.leaky_slope(p) == pytest.approx(measured, rel=1e-12, abs=1e-15)


def test_leaky_slope_is_zero_for_activations_that_declare_none():
    assert get("tanh").leaky_slope() == 0.0 and get("relu").leaky_slope() == 0.0
    assert get("leaky_relu").leaky_slope({"negative_slope": 0.2}) == 0.2
    assert get("prelu").leaky_slope({"negative_slope": torch.tensor([0.1, 0.3])}) == pytest.approx(0.2)
