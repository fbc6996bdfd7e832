"""Models: forward shapes for every catalog activation, maxout's doubled parameters, the CNN,
recurrent nets (against torch.nn.RNN as the oracle) and build_model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actlab.activations import ActivationError, names, specs
from actlab.lab.data import load_dataset, load_sequence_task
from actlab.lab.models import MLP, RNNModel, SmallCNN, build_model, count_parameters


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny nets on a shared 2-core machine: more threads only spin.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", names())
def test_mlp_forward_and_backward_for_every_catalog_activation(name: str) -> None:
    torch.manual_seed(0)
    m = MLP(5, 3, depth=2, width=4, activation=name)
    x = torch.randn(7, 5)
    y = m(x)
    assert y.shape == (7, 3) and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None for p in m.output_layer.parameters())
    assert [a.spec.name for a in m.activations()] == [name, name]
    assert len(m.hidden_layers()) == 2 and len(m.linear_layers()) == 3


def test_mlp_per_layer_activations_and_params() -> None:
    m = MLP(3, 2, depth=3, width=6, activation=["relu", "leaky_relu", "prelu"],
            activation_params=[None, {"negative_slope": 0.2}, {"num_parameters": 6}])
    acts = m.activations()
    assert [a.spec.name for a in acts] == ["relu", "leaky_relu", "prelu"]
    assert acts[1].fixed["negative_slope"] == 0.2 and acts[2].negative_slope.shape == (6,)
    assert m(torch.randn(4, 3)).shape == (4, 2)
    with pytest.raises(ValueError, match="one per hidden layer"):
        MLP(3, 2, depth=3, width=6, activation=["relu", "tanh"])
    with pytest.raises(ActivationError, match="unknown activation"):
        MLP(3, 2, depth=1, width=6, activation="rellu")


def test_maxout_doubles_the_parameters_at_k2_and_triples_at_k3() -> None:
    relu = MLP(20, 10, depth=3, width=16, activation="relu")
    mo2 = MLP(20, 10, depth=3, width=16, activation="maxout")
    mo3 = MLP(20, 10, depth=3, width=16, activation="maxout", activation_params={"pieces": 3})

    def hidden(m: MLP) -> int:
        return sum(count_parameters(layer) for layer in m.hidden_layers())

    assert hidden(mo2) == 2 * hidden(relu) and hidden(mo3) == 3 * hidden(relu)
    assert [tuple(layer.weight.shape) for layer in mo2.hidden_layers()] == [(32, 20), (32, 16), (32, 16)]
    assert mo2.output_layer.in_features == 16 and mo2(torch.randn(2, 20)).shape == (2, 10)
    assert count_parameters(mo2) == mo2.num_parameters() == hidden(mo2) + 16 * 10 + 10


def test_forward_all_returns_pre_and_post_activations() -> None:
    m = MLP(4, 3, depth=2, width=5, activation="maxout")
    out, pre, post = m.forward_all(torch.randn(6, 4))
    assert out.shape == (6, 3) and [p.shape for p in pre] == [(6, 10), (6, 10)]
    assert [p.shape for p in post] == [(6, 5), (6, 5)]
    assert torch.equal(post[0], pre[0].view(6, 5, 2).amax(-1))


def test_depth_zero_is_a_linear_model_and_dropout_is_a_layer() -> None:
    assert len(MLP(4, 2, depth=0, width=8).linear_layers()) == 1
    m = MLP(4, 2, depth=2, width=8, dropout=0.5)
    assert sum(isinstance(x, nn.Dropout) for x in m.net) == 2
    m.eval()
    x = torch.randn(3, 4)
    assert torch.equal(m(x), m(x))


@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout", "prelu"])
def test_small_cnn_shapes(activation: str) -> None:
    torch.manual_seed(0)
    m = SmallCNN(1, 10, activation=activation)
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert m(torch.randn(2, 784)).shape == (2, 10)  # a flat input is reshaped
    d = SmallCNN(1, 10, activation=activation, image_size=8)
    assert d(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert len(m.activations()) == 3 and len(m.hidden_layers()) == 3


def test_small_cnn_maxout_doubles_conv_channels() -> None:
    relu, mo = SmallCNN(1, 10), SmallCNN(1, 10, activation="maxout")
    convs = lambda m: [c for c in m.net if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert [c.out_channels for c in convs(mo)] == [2 * c.out_channels for c in convs(relu)]


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_rnn_shapes_and_gradient_reaches_the_first_step(kind: str) -> None:
    torch.manual_seed(0)
    m = RNNModel(kind, input_size=2, hidden_size=8, out_features=1)
    x = torch.randn(4, 12, 2, requires_grad=True)
    y = m(x)
    assert y.shape == (4, 1)
    y.sum().backward()
    assert x.grad.shape == (4, 12, 2) and float(x.grad[:, 0].abs().sum()) > 0
    out, hs = m.steps(x)
    assert out.shape == (4, 12, 1) and hs.shape == (4, 12, 8)
    assert torch.allclose(out[:, -1], y)
    seq = RNNModel(kind, input_size=2, hidden_size=8, out_features=3, return_sequence=True)
    assert seq(x).shape == (4, 12, 3)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_plain_rnn_matches_torch_rnn(nonlinearity: str) -> None:
    torch.manual_seed(0)
    ours = RNNModel("rnn", 3, 6, 2, activation=nonlinearity, num_layers=2)
    ref = nn.RNN(3, 6, num_layers=2, nonlinearity=nonlinearity, batch_first=True)
    ref.load_state_dict(ours.rnn.state_dict())
    x = torch.randn(5, 9, 3)
    hs, last = ours.rnn(x)
    ref_hs, ref_last = ref(x)
    assert torch.allclose(hs, ref_hs, atol=1e-6) and torch.allclose(last, ref_last, atol=1e-6)


def test_plain_rnn_takes_any_elementwise_activation_but_gates_are_fixed() -> None:
    m = RNNModel("rnn", 2, 4, 1, activation="sigmoid")
    assert [a.spec.name for a in m.activations()] == ["sigmoid"]
    assert m(torch.randn(2, 5, 2)).shape == (2, 1)
    with pytest.raises(ActivationError, match="elementwise"):
        RNNModel("rnn", 2, 4, 1, activation="maxout")
    with pytest.raises(ActivationError, match="fixed sigmoid/tanh gates"):
        RNNModel("lstm", 2, 4, 1, activation="relu")
    with pytest.raises(ValueError, match="valid: 'rnn', 'gru', 'lstm'"):
        RNNModel("transformer", 2, 4, 1)


def test_build_model_from_a_plain_dict() -> None:
    data = load_dataset("iris")
    m = build_model({"model": "mlp", "depth": 2, "width": 8, "activation": "tanh", "init": "xavier_normal",
                     "seed": 0}, data)
    assert isinstance(m, MLP) and m.in_features == 4 and m.out_features == 3
    m2 = build_model({"model": "mlp", "depth": 2, "width": 8, "activation": "tanh", "init": "xavier_normal",
                      "seed": 0}, data)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))
    digits = load_dataset("digits", flatten=False)
    cnn = build_model({"model": "cnn", "activation": "relu"}, digits)
    assert isinstance(cnn, SmallCNN) and cnn(digits.x_train[:2]).shape == (2, 10)
    seq = load_sequence_task("adding", length=10, n=8)
    lstm = build_model({"model": "lstm", "hidden_size": 8}, seq)
    assert isinstance(lstm, RNNModel) and lstm(seq.x_train).shape == (8, 1)
    with pytest.raises(ValueError, match="valid: mlp, cnn"):
        build_model({"model": "resnet"})
    assert len(specs()) == len(names())
