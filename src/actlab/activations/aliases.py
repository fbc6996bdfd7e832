"""Third-party activation classes and the catalog entry each one computes (data only).

Keyed by the class's ``__module__`` and ``__qualname__``, so nothing here imports those libraries;
the probe reads the table (:func:`actlab.probe.attribution.match_module`) to see a model built
with them as the activations it contains, whatever their inside.  Values: ``(catalog name,
hyperparameters)``; a value ``"@attr"`` is read from the module's attribute ``attr``.  Add a row
to recognise a new class.
"""

from __future__ import annotations

from typing import Any

THIRD_PARTY: dict[str, tuple[str, dict[str, Any]]] = {
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
    # Keras 3 layers (on the torch backend they are torch modules)
    "keras.src.layers.activations.relu.ReLU": ("relu", {}),
    "keras.src.layers.activations.elu.ELU": ("elu", {}),
    "keras.src.layers.activations.leaky_relu.LeakyReLU": ("leaky_relu", {"negative_slope": "@negative_slope"}),
}
