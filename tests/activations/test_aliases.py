"""``activations/aliases.py``: third-party activation classes map to the catalog entry they compute.

The Keras 3 rows are checked twice: on stand-in classes carrying Keras' qualified names and its
formulas (keras/src/activations/activations.py: ``relu``, ``leaky_relu``, ``elu``), which always
run, and on Keras itself on the torch backend where it is installed (checked with keras 3.15.1).
"""

from __future__ import annotations

import importlib
import math
import os

import pytest
import torch
from torch import nn

from actlab.activations import apply
from actlab.activations.aliases import THIRD_PARTY
from actlab.probe.attribution import match_module

GRID = torch.linspace(-8.0, 8.0, 1601, dtype=torch.float64)[None, :]


def _named(qualified: str):
    """A decorator giving a stand-in class the module and qualified name of a third-party one."""
    mod, _, name = qualified.rpartition(".")

    def wrap(cls):
        cls.__module__, cls.__qualname__, cls.__name__ = mod, name, name
        return cls

    return wrap


# Keras 3's formulas, as keras/src/activations/activations.py computes them
@_named("keras.src.layers.activations.relu.ReLU")
class KerasReLU(nn.Module):
    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0):
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x):
        y = torch.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        return y if self.max_value is None else torch.clamp(y, max=self.max_value)


@_named("keras.src.layers.activations.leaky_relu.LeakyReLU")
class KerasLeakyReLU(nn.Module):
    def __init__(self, negative_slope=0.3):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return torch.where(x >= 0, x, self.negative_slope * x)


@_named("keras.src.layers.activations.elu.ELU")
class KerasELU(nn.Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return torch.where(x > 0, x, self.alpha * torch.expm1(x))


MAPPED = [  # (module, catalog entry it computes)
    (KerasReLU(), "relu"),
    (KerasReLU(negative_slope=0.2), "leaky_relu"),
    (KerasReLU(max_value=6), "relu6"),
    (KerasReLU(max_value=6.0), "relu6"),
    (KerasLeakyReLU(), "leaky_relu"),  # Keras' default slope is 0.3, torch's 0.01
    (KerasLeakyReLU(negative_slope=0.05), "leaky_relu"),
    (KerasELU(), "elu"),
    (KerasELU(alpha=0.5), "elu"),
]


@pytest.mark.parametrize("module,name", MAPPED, ids=[f"{n}-{i}" for i, (_, n) in enumerate(MAPPED)])
def test_keras_rows_name_the_function_the_layer_computes(module, name):
    got = match_module(module)
    assert got is not None and got[2] == "table"
    spec, params, _ = got
    assert spec.name == name
    with torch.no_grad():
        want = module(GRID.clone())
        have = apply(spec, GRID.clone(), **params)
    torch.testing.assert_close(have, want, rtol=1e-12, atol=1e-12)


def test_a_keras_relu_no_row_fits_is_not_named():
    # a threshold or an odd cap computes no catalog function: unnamed rather than called "relu"
    assert match_module(KerasReLU(threshold=0.5)) is None
    assert match_module(KerasReLU(max_value=2.0)) is None


def test_every_keras_row_has_a_stand_in_here():
    covered = {f"{type(m).__module__}.{type(m).__qualname__}" for m, _ in MAPPED}
    assert {k for k in THIRD_PARTY if k.startswith("keras.")} <= covered


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras not installed (with it these run on the torch backend)")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on the {keras.backend.backend()!r} backend in this process, not torch")
    return keras


@pytest.mark.integration
def test_real_keras_classes_live_where_the_table_says():
    _keras()
    for key in (k for k in THIRD_PARTY if k.startswith("keras.")):
        mod, _, name = key.rpartition(".")
        assert hasattr(importlib.import_module(mod), name), key


@pytest.mark.integration
@pytest.mark.parametrize("make,name", [
    (lambda k: k.layers.ReLU(), "relu"),
    (lambda k: k.layers.ReLU(negative_slope=0.2), "leaky_relu"),
    (lambda k: k.layers.ReLU(max_value=6.0), "relu6"),
    (lambda k: k.layers.LeakyReLU(), "leaky_relu"),
    (lambda k: k.layers.ELU(alpha=0.5), "elu"),
])
def test_real_keras_layers_on_torch_are_matched(make, name):
    keras = _keras()
    layer = make(keras)
    assert isinstance(layer, nn.Module)
    spec, params, how = match_module(layer)
    assert (spec.name, how) == (name, "table")
    x = GRID.float().clone()
    with torch.no_grad():
        want = layer(x)
        have = apply(spec, x.clone(), **params)
    torch.testing.assert_close(torch.as_tensor(have), torch.as_tensor(want).to(have.device), rtol=1e-6, atol=1e-6)


@pytest.mark.integration
def test_the_probe_sees_keras_activations_on_torch():
    keras = _keras()
    from actlab.probe import Probe

    torch.manual_seed(0)
    layers = keras.layers
    model = keras.Sequential([keras.Input((8,)), layers.Dense(16), layers.LeakyReLU(), layers.Dense(2)])
    with Probe(model) as probe:
        out = model(torch.randn(32, 8))
        out.sum().backward()
    acts = [l for l in probe.read().layers if l.spec is not None]
    assert [l.spec.name for l in acts] == ["leaky_relu"]
    assert not math.isnan(probe.records()[0].mean)
