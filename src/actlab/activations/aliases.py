"""Third-party activation classes and the catalog entry each one computes (data only).

Keyed by the class's ``__module__`` and ``__qualname__``, so nothing here imports those libraries;
the probe reads the table (:func:`actlab.probe.attribution.match_module`) to see a model built
with them as the activations it contains, whatever their inside.  Values: ``(catalog name,
hyperparameters)``, or a list of ``(catalog name, hyperparameters, when)`` tried in order, where
``when`` holds the attribute values under which the row applies (a class that computes different
catalog functions by its arguments, as Keras' ``ReLU`` does); a hyperparameter ``"@attr"`` is
read from the module's attribute ``attr``.  A module no row applies to is left to the grid match.
Add a row to recognise a new class.
"""

from __future__ import annotations

from typing import Any, Union

Row = Union[tuple[str, dict[str, Any]], list[tuple[str, dict[str, Any], dict[str, Any]]]]

THIRD_PARTY: dict[str, Row] = {
    # Hugging Face transformers (transformers/activations.py)
    "transformers.activations.GELUActivation": ("gelu", {}),
    "transformers.activations.NewGELUActivation": ("gelu_tanh", {}),
    "transformers.activations.GELUTanh": ("gelu_tanh", {}),
    "transformers.activations.PytorchGELUTanh": ("gelu_tanh", {}),
    "transformers.activations.FastGELUActivation": ("gelu_tanh", {}),
    "transformers.activations.QuickGELUActivation": ("swish", {"beta": 1.702}),  # x * sigmoid(1.702 x)
    "transformers.activations.SiLUActivation": ("silu", {}),
    "transformers.activations.MishActivation": ("mish", {}),
    "transformers.activations.LinearActivation": ("identity", {}),
    # timm (timm/layers/activations.py)
    "timm.layers.activations.GELU": ("gelu", {}),
    "timm.layers.activations.GELUTanh": ("gelu_tanh", {}),
    "timm.layers.activations.QuickGELU": ("swish", {"beta": 1.702}),
    "timm.layers.activations.Swish": ("silu", {}),
    "timm.layers.activations.Mish": ("mish", {}),
    "timm.layers.activations.Sigmoid": ("sigmoid", {}),
    "timm.layers.activations.Tanh": ("tanh", {}),
    "timm.layers.activations.HardSigmoid": ("hard_sigmoid", {}),
    "timm.layers.activations_me.SwishMe": ("silu", {}),
    "timm.layers.activations_me.MishMe": ("mish", {}),
    # Keras 3 layers (keras/src/layers/activations/; on the torch backend they are torch modules).
    # ReLU(max_value=None, negative_slope=0.0, threshold=0.0) is ReLU, leaky ReLU or ReLU6 by its
    # arguments; other settings (a threshold, another cap) match no catalog entry.
    "keras.src.layers.activations.relu.ReLU": [
        ("relu", {}, {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}),
        ("leaky_relu", {"negative_slope": "@negative_slope"}, {"max_value": None, "threshold": 0.0}),
        ("relu6", {}, {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}),
    ],
    "keras.src.layers.activations.elu.ELU": ("elu", {"alpha": "@alpha"}),
    "keras.src.layers.activations.leaky_relu.LeakyReLU": ("leaky_relu", {"negative_slope": "@negative_slope"}),
}
