"""``nn.Module`` classes for every catalog activation, generated from the registry.

``actlab.nn.LeakyReLU(negative_slope=0.1)``, ``actlab.nn.Maxout(pieces=3)``, ``actlab.nn.PReLU(num_parameters=16)``...
Each class's docstring is written from its spec: formula, derivative, hyperparameters with
defaults and ranges, shape, properties and an example.
"""

from __future__ import annotations

from actlab.activations.registry import specs
from actlab.activations.spec import ActivationSpec
from actlab.activations.torch import Activation

__all__ = ["Activation", "module_class"]


def _docstring(spec: ActivationSpec) -> str:
    lines = [f"{spec.title}: {spec.note}", "", ".. math::", f"    {spec.formula}", "",
             ".. math::", f"    {spec.derivative_formula}", ""]
    if spec.params:
        lines.append("Args:")
        for hp in spec.params:
            learn = " Learnable." if hp.learnable else ""
            lines.append(f"    {hp.name} (float): {hp.doc}. Default: ``{hp.default:g}``; range {hp.range_text()}.{learn}")
        if spec.learnable:
            lines.append("    num_parameters (int): entries of the learnable parameter (1 or the channel count). Default: ``1``")
        lines.append("")
    if spec.elementwise:
        lines += ["Shape:", "    - Input: :math:`(*)`, any shape.", "    - Output: :math:`(*)`, same shape as the input.", ""]
    else:
        lines += ["Shape:", "    - Input: :math:`(*, m k)`.", "    - Output: :math:`(*, m)`.", ""]
    lines += [
        f"Properties: output range {spec.range_text()}; {'zero-centred' if spec.zero_centred else 'not zero-centred'}; "
        f"{'monotone' if spec.monotone else 'not monotone'}; saturates: {spec.saturates}; "
        f"can die: {'yes' if spec.can_die else 'no'}; cost: {spec.cost}.",
        "",
        f"Reference: {spec.reference}",
        "",
        "Examples::",
        "",
        f"    >>> m = actlab.nn.{spec.cls_name}()",
        f"    >>> y = m(torch.randn(8, {4 if spec.elementwise else 8}))",
    ]
    return "\n".join(lines)


def module_class(spec: ActivationSpec) -> type[Activation]:
    """The generated ``nn.Module`` class of ``spec``."""
    return _CLASSES[spec.name]


_CLASSES: dict[str, type[Activation]] = {}
for _spec in specs():
    _cls = type(_spec.cls_name, (Activation,), {"spec": _spec, "__doc__": _docstring(_spec), "__module__": __name__})
    _CLASSES[_spec.name] = _cls
    globals()[_spec.cls_name] = _cls
    __all__.append(_spec.cls_name)
