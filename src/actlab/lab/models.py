"""Models for the lab: an MLP, a small CNN and recurrent nets, each built from catalog activations.

Activations come from the catalog (``actlab.nn.module_class(get(name))(**params)``), so any
of its nonlinearities fits in any layer, the analytic derivative is what backprop uses, and
the probe recognises every activation module.  Maxout is handled where it changes the
architecture: the layer before a ``Maxout(pieces=k)`` outputs ``k`` times the units.

Example::

    >>> from actlab.lab.models import MLP
    >>> m = MLP(2, 2, depth=3, width=16, activation="tanh")
    >>> m(torch.randn(5, 2)).shape
    torch.Size([5, 2])
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from actlab.activations import ActivationError, ActivationSpec, get
from actlab.activations.torch import Activation
from actlab.nn import module_class
from actlab.lab.init import init_weights

ActivationArg = str | ActivationSpec
ParamsArg = Mapping[str, Any] | None


def make_activation(activation: ActivationArg, params: ParamsArg = None) -> Activation:
    """The catalog module for ``activation`` with ``params`` (validated by the spec).

    ``params`` may hold ``num_parameters`` for learnable activations (PReLU per channel).
    """
    spec = get(activation)
    return module_class(spec)(**dict(params or {}))


def _pieces(act: nn.Module) -> int:
    """Inputs per output unit: ``k`` for maxout, 1 for elementwise activations."""
    return act.spec.group_size(act.fixed) if isinstance(act, Activation) else 1


def _per_layer(value: Any, depth: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ValueError(f"{what}: got {len(value)} entries for depth={depth}; give one per hidden layer")
        return list(value)
    return [value] * depth


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class MLP(nn.Module):
    r"""A fully connected net: ``depth`` hidden layers of ``width`` units, then a linear output.

    .. math::
        h_0 = x, \quad h_l = f_l(W_l h_{l-1} + b_l), \quad y = W_{L+1} h_L + b_{L+1}

    Args:
        in_features: input size (an input of any shape is flattened after the batch dim).
        out_features: output size (logits, or regression outputs).
        depth: number of hidden layers (0 gives a linear model).
        width: units per hidden layer (after maxout's reduction).
        activation: a catalog name or spec, or a list with one per hidden layer.  Default: ``"relu"``
        activation_params: hyperparameters, a dict or a list with one per hidden layer
            (``{"negative_slope": 0.1}``; ``{"pieces": 3}`` for maxout; ``{"num_parameters": width}``
            for per-unit PReLU).  Default: the activation's defaults.
        bias: whether layers have biases.  Default: ``True``
        dropout: dropout probability after each hidden activation.  Default: ``0.0``

    Shape:
        - Input: :math:`(N, *)` with ``in_features`` elements per example.
        - Output: :math:`(N, \text{out\_features})`.

    Attributes:
        net: the ``nn.Sequential`` of Linear, activation (and Dropout) modules, in forward order.

    Example::

        >>> m = MLP(784, 10, depth=2, width=64, activation=["relu", "maxout"])
        >>> [tuple(l.weight.shape) for l in m.hidden_layers()]
        [(64, 784), (128, 64)]
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        depth: int,
        width: int,
        activation: ActivationArg | Sequence[ActivationArg] = "relu",
        activation_params: ParamsArg | Sequence[ParamsArg] = None,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if int(depth) < 0 or int(width) < 1 or int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(
                f"MLP needs depth >= 0 and width, in_features, out_features >= 1; got depth={depth}, "
                f"width={width}, in_features={in_features}, out_features={out_features}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        acts = _per_layer(activation, depth, "activation")
        params = _per_layer(activation_params, depth, "activation_params")
        self.in_features, self.out_features, self.depth, self.width = int(in_features), int(out_features), depth, width
        self.dropout = float(dropout)
        layers: list[nn.Module] = []
        self._hidden_idx: list[int] = []
        self._act_idx: list[int] = []
        fan_in = int(in_features)
        for a, p in zip(acts, params):
            act = make_activation(a, p)
            k = _pieces(act)
            self._hidden_idx.append(len(layers))
            layers.append(nn.Linear(fan_in, width * k, bias=bias))
            self._act_idx.append(len(layers))
            layers.append(act)
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            fan_in = width
        layers.append(nn.Linear(fan_in, out_features, bias=bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))

    def hidden_layers(self) -> list[nn.Linear]:
        """The Linear layers feeding each hidden activation (not the output layer)."""
        return [self.net[i] for i in self._hidden_idx]  # type: ignore[misc]

    def linear_layers(self) -> list[nn.Linear]:
        """Every Linear layer, input to output (the hidden ones, then the output layer)."""
        return [*self.hidden_layers(), self.net[-1]]  # type: ignore[list-item]

    @property
    def output_layer(self) -> nn.Linear:
        return self.net[-1]  # type: ignore[return-value]

    def activations(self) -> list[Activation]:
        """The activation module of each hidden layer."""
        return [self.net[i] for i in self._act_idx]  # type: ignore[misc]

    def forward_all(self, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The output plus each hidden layer's pre-activations and activations (dropout applied).

        Returns:
            ``(output, pre, post)``: ``pre[l]`` is ``W_l h_{l-1} + b_l`` (``(N, width * k)``),
            ``post[l]`` is ``h_l`` (``(N, width)``).
        """
        pre: list[Tensor] = []
        post: list[Tensor] = []
        h = x.flatten(1)
        for i, m in enumerate(self.net):
            h = m(h)
            if i in self._hidden_idx:
                pre.append(h)
            elif i in self._act_idx:
                post.append(h)
        return h, pre, post

    def num_parameters(self) -> int:
        return count_parameters(self)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}"


class _ChannelsLast(nn.Module):
    """Applies a non-elementwise activation (maxout) over channels: it reduces the last dim."""

    def __init__(self, act: Activation) -> None:
        super().__init__()
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x.movedim(1, -1)).movedim(-1, 1)


class SmallCNN(nn.Module):
    r"""Two 3x3 conv blocks (16 and 32 channels, each ``conv -> f -> 2x2 max-pool``), a hidden
    fully connected layer of ``hidden`` units and a linear output.

    Args:
        in_channels: input channels (1 for MNIST).
        n_classes: outputs.
        activation: a catalog name or spec (maxout: each conv / linear layer gives ``k`` times
            the channels, reduced over channels).  Default: ``"relu"``
        activation_params: its hyperparameters.  Default: defaults
        image_size: input height = width (28 for MNIST, 8 for digits).  Default: ``28``
        channels: channels of the two conv blocks.  Default: ``(16, 32)``
        hidden: units of the hidden fully connected layer.  Default: ``64``

    Shape:
        - Input: :math:`(N, C, S, S)` (a flat :math:`(N, C S^2)` input is reshaped).
        - Output: :math:`(N, \text{n\_classes})`.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        activation: ActivationArg = "relu",
        activation_params: ParamsArg = None,
        image_size: int = 28,
        channels: tuple[int, int] = (16, 32),
        hidden: int = 64,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = int(in_channels), int(image_size)
        if self.image_size < 4:
            raise ValueError(f"image_size must be >= 4 (two 2x2 poolings), got {image_size}")
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for c in channels:
            act = make_activation(activation, params=activation_params)
            k = _pieces(act)
            # Maxout reduces the last dim, so over channels it needs them moved last.
            layers += [nn.Conv2d(c_in, c * k, 3, padding=1), act if act.spec.elementwise else _ChannelsLast(act),
                       nn.MaxPool2d(2)]
            c_in = c
        side = self.image_size // 4
        act = make_activation(activation, params=activation_params)
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, hidden * _pieces(act)), act,
                   nn.Linear(hidden, n_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], self.in_channels, self.image_size, self.image_size)
        return self.net(x)

    def hidden_layers(self) -> list[nn.Module]:
        """Conv and Linear layers feeding an activation (not the output layer)."""
        return [m for m in self.net if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]

    def activations(self) -> list[Activation]:
        return [m for m in self.modules() if isinstance(m, Activation)]

    def num_parameters(self) -> int:
        return count_parameters(self)


class ElmanRNN(nn.Module):
    r"""A plain (Elman) recurrent layer stack with any elementwise catalog activation.

    .. math::
        h_t = f(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Parameters are named as in ``torch.nn.RNN`` (``weight_ih_l0``, ``weight_hh_l0``, ...).
    ``torch.nn.RNN`` offers only tanh and ReLU; this loop runs any activation, through the
    catalog's analytic derivative, and the probe sees its activation module.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 activation: ActivationArg = "tanh", activation_params: ParamsArg = None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.act = make_activation(activation, activation_params)
        if not self.act.spec.elementwise:
            raise ActivationError(f"a plain RNN needs an elementwise activation, not {self.act.spec.name!r}")
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, n_in)))
            setattr(self, f"weight_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            setattr(self, f"bias_ih_l{layer}", nn.Parameter(torch.empty(hidden_size)))
            setattr(self, f"bias_hh_l{layer}", nn.Parameter(torch.empty(hidden_size)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch.nn.RNN's default: every parameter U(-1/sqrt(H), 1/sqrt(H)).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters(recurse=False):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, T, input_size)`` -> (top-layer states ``(N, T, H)``, last states ``(layers, N, H)``)."""
        seq = x
        last = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            # The input projection of all steps at once; only the recurrence is sequential.
            u = torch.nn.functional.linear(seq, w_ih, b)
            h = seq.new_zeros(seq.shape[0], self.hidden_size)
            w_hh_t = w_hh.T
            outs = []
            for t in range(seq.shape[1]):
                h = self.act(torch.addmm(u[:, t], h, w_hh_t))
                outs.append(h)
            seq = torch.stack(outs, dim=1)
            last.append(h)
        return seq, torch.stack(last)


class RNNModel(nn.Module):
    r"""A recurrent net (plain RNN, GRU or LSTM) with a linear read-out at every step.

    Args:
        kind: ``"rnn"`` (any elementwise catalog activation), ``"gru"`` or ``"lstm"`` (torch's,
            with their own sigmoid/tanh gates).  Default: ``"rnn"``
        input_size: features per step.
        hidden_size: state size.
        out_features: outputs per step.
        activation: the plain RNN's nonlinearity.  Default: ``"tanh"``
        activation_params: its hyperparameters.
        num_layers: stacked recurrent layers.  Default: ``1``
        return_sequence: ``forward`` returns every step's output ``(N, T, out)`` when true, else
            the last step's ``(N, out)`` (what a loss on the final answer needs).  Default: ``False``

    Shape:
        - Input: :math:`(N, T, \text{input\_size})`.
        - Output: :math:`(N, \text{out})`, or :math:`(N, T, \text{out})` with ``return_sequence``.

    Gradients through time: make the input require grad and read ``x.grad[:, t]`` after
    ``loss.backward()``; ``steps(x)`` gives every step's output and hidden state.
    """

    def __init__(
        self,
        kind: str = "rnn",
        input_size: int = 2,
        hidden_size: int = 32,
        out_features: int = 1,
        activation: ActivationArg = "tanh",
        activation_params: ParamsArg = None,
        num_layers: int = 1,
        return_sequence: bool = False,
    ) -> None:
        super().__init__()
        kind = str(kind).lower()
        self.kind, self.return_sequence = kind, bool(return_sequence)
        if kind == "rnn":
            self.rnn: nn.Module = ElmanRNN(input_size, hidden_size, num_layers, activation, activation_params)
        elif kind in ("gru", "lstm"):
            if get(activation).name != "tanh" or activation_params:
                raise ActivationError(
                    f"{kind.upper()} has fixed sigmoid/tanh gates; activation applies to kind='rnn' only"
                )
            cls = nn.GRU if kind == "gru" else nn.LSTM
            self.rnn = cls(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        else:
            raise ValueError(f"unknown recurrent kind {kind!r}; valid: 'rnn', 'gru', 'lstm'")
        self.head = nn.Linear(hidden_size, out_features)

    def steps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every step's output ``(N, T, out)`` and top-layer hidden state ``(N, T, H)``."""
        hs, _ = self.rnn(x)
        return self.head(hs), hs

    def forward(self, x: Tensor) -> Tensor:
        if self.return_sequence:
            return self.steps(x)[0]
        hs, _ = self.rnn(x)
        return self.head(hs[:, -1])

    def activations(self) -> list[Activation]:
        return [m for m in self.modules() if isinstance(m, Activation)]

    def num_parameters(self) -> int:
        return count_parameters(self)


MODELS = {
    "mlp": "fully connected net (in_features, out_features, depth, width, activation, ...)",
    "cnn": "small CNN: 2 conv blocks + 1 hidden fully connected layer (in_channels, n_classes, image_size, ...)",
    "rnn": "plain recurrent net with any elementwise activation (input_size, hidden_size, out_features, ...)",
    "gru": "GRU (input_size, hidden_size, out_features, num_layers)",
    "lstm": "LSTM (input_size, hidden_size, out_features, num_layers)",
}


def build_model(config: Mapping[str, Any], data: Any = None) -> nn.Module:
    """A model from a plain dict, e.g. one row of a sweep.

    ``config["model"]`` (or ``"kind"``) picks the class (see :data:`MODELS`; default ``"mlp"``);
    the other keys are its constructor's arguments.  Given a :class:`~actlab.lab.data.Dataset`,
    the input and output sizes default to the data's.  Optional keys ``"init"`` (a scheme name,
    or a dict of :func:`~actlab.lab.init.init_weights` arguments with ``"scheme"``) and
    ``"seed"`` initialise the weights.

    Example::

        >>> m = build_model({"model": "mlp", "in_features": 2, "out_features": 2, "depth": 2, "width": 8,
        ...                  "activation": "tanh", "init": "xavier_normal", "seed": 0})
        >>> [a.spec.name for a in m.activations()]
        ['tanh', 'tanh']
    """
    cfg = dict(config)
    kind = str(cfg.pop("model", cfg.pop("kind", "mlp"))).lower()
    init = cfg.pop("init", None)
    seed = cfg.pop("seed", None)
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; valid: {', '.join(MODELS)}")
    if kind == "mlp":
        if data is not None:
            cfg.setdefault("in_features", data.in_features)
            cfg.setdefault("out_features", data.out_features)
        model: nn.Module = MLP(**cfg)
    elif kind == "cnn":
        if data is not None:
            shape = tuple(data.input_shape)
            cfg.setdefault("in_channels", shape[0] if len(shape) == 3 else 1)
            cfg.setdefault("image_size", shape[-1] if len(shape) == 3 else int(round(math.sqrt(shape[0]))))
            cfg.setdefault("n_classes", data.out_features)
        model = SmallCNN(**cfg)
    else:
        if data is not None:
            cfg.setdefault("input_size", data.in_features)
            cfg.setdefault("out_features", data.out_features)
        model = RNNModel(kind=kind, **cfg)
    if init is None and seed is not None:
        init = "torch_default"  # a seed alone means torch's default init, drawn from that seed
    if init is not None:
        kw = {"scheme": init} if isinstance(init, str) else dict(init)
        kw.setdefault("seed", seed)
        init_weights(model, **kw)
    return model


__all__ = ["MLP", "MODELS", "ElmanRNN", "RNNModel", "SmallCNN", "build_model", "count_parameters", "make_activation"]
