"""Activation moments: mean, standard deviation and RMS of a layer's output over every element."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from actlab.probe.quantities.base import Field, Quantity


def moments(y: Tensor, dims: Any = None) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, standard deviation (population: divided by n) and RMS of ``y`` over ``dims``.

    Args:
        y: a layer's output.
        dims: the dimensions reduced; ``None``: all of them (what the probe records).  The sweep
            engine passes the non-model dimensions of its stacked tensors.

    Returns:
        ``(mean, std, rms)``; ``std**2 = rms**2 - mean**2``.
    """
    v = y.detach().double()
    mean = v.mean() if dims is None else v.mean(dims)
    sq = v.square().mean() if dims is None else v.square().mean(dims)
    return mean, (sq - mean.square()).clamp_min(0).sqrt(), sq.sqrt()


def _plot(data: Any, ax: Any) -> None:
    from actlab.probe.quantities.base import colours

    mean = data.series("mean", lambda r: bool(r.activation))
    std = data.series("std", lambda r: bool(r.activation))
    for (name, (s, m)), c in zip(mean.items(), colours(len(mean))):
        sd = dict(zip(*std.get(name, ([], []))))
        ax.plot(s, m, color=c, label=name, lw=1.2)
        ax.fill_between(s, [mi - sd.get(si, float("nan")) for si, mi in zip(s, m)],
                        [mi + sd.get(si, float("nan")) for si, mi in zip(s, m)], color=c, alpha=0.15)
    ax.set_xlabel("step")
    ax.set_ylabel("activation value (mean +- std)")


QUANTITY = Quantity(
    order=10,
    key="activations",
    doc="mean +- std of each activation layer's output over steps (Glorot & Bengio's figure)",
    schedule="step",
    target="activation",
    fields=(
        Field("mean", "mean of the layer's output over every element"),
        Field("std", "standard deviation of the layer's output over every element (divided by n)"),
        Field("out_rms", "root mean square of the layer's output"),
    ),
    reduce=moments,
    plot=_plot,
)
