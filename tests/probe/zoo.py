"""The diagnosis zoo: deliberately broken networks, each with the finding and cause it must get,
and healthy networks of many families that must get no warning or error.

Shared by the tests (``tests/probe/test_probe_zoo.py``) and the table printed by
``benchmarks/diagnosis.py``.  Every case is small (sklearn's 8x8 digits, CPU, about a second; the
BERT- and MobileNetV2-style ones, written as Hugging Face and torchvision build them, several).
Those two are healthy models on which earlier detectors raised false alarms: vanishing gradients
from comparing attention query/key projections with the classifier, and ReLU6's zero side
counted as saturation.

A case is judged by :func:`judge`:

- *detected*: a finding of the expected kind (any severity: ``not_zero_centred`` is an info);
- *right cause*: that finding's cause names every word of ``Case.cause`` (case-insensitive);
- *false alarms*: warnings or errors of any kind other than the expected one and ``Case.also``
  (the consequences the case may legitimately show too, e.g. vanishing gradients behind a dead
  layer), and any finding whose cause or advice names a phrase of ``Case.never`` (a wrong cause
  the case is built to tempt, e.g. "learning rate" for units dead before the first update).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from actlab.probe import Probe

# pytest puts tests/probe on the path; the benchmark adds it itself.  The plain MLP, He init and
# the torch recurrent model are probe_nets' own.
from probe_nets import SeqLSTM as Recurrent  # noqa: F401  (re-exported for the tests)
from probe_nets import digits, mlp
from probe_nets import he_init as he


# ---------------------------------------------------------------------------- data
def raw_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as raw pixel intensities 0-255 (not centred, not scaled)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.data, dtype=torch.float32) * (255.0 / 16.0), torch.tensor(d.target, dtype=torch.long)


def pixel_tokens() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as 64 tokens each, the token id a pixel's intensity 0-16 (integers, for an
    embedding table, as a language model reads word ids)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.data, dtype=torch.long), torch.tensor(d.target, dtype=torch.long)


def batches(n_steps: int, batch: int, seed: int, data: str = "digits"):
    g = torch.Generator().manual_seed(seed)
    if data == "sign":  # one fixed batch of 20 Gaussian features, label = sign of the first (full-batch GD)
        x = torch.randn(batch, 20, generator=g)
        y = (x[:, 0] > 0).long()
        for _ in range(n_steps):
            yield x.clone(), y
        return
    x, y = {"pixels": raw_pixels, "tokens": pixel_tokens}.get(data, digits)()
    for _ in range(n_steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        yield x[idx].clone(), y[idx]


# ---------------------------------------------------------------------------- models
def scaled(model: nn.Module, sigma_w2: float | None = None, factor: float | None = None,
           bias: float | None = None, const: float | None = None) -> nn.Module:
    """Re-initialise the Linear layers: N(0, sigma_w2 / fan_in), or scale by ``factor``, or fill."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                if sigma_w2 is not None:
                    m.weight.normal_(0.0, math.sqrt(sigma_w2 / m.in_features))
                if factor is not None:
                    m.weight.mul_(factor)
                if const is not None:
                    m.weight.fill_(const)
                if bias is not None:
                    m.bias.fill_(bias)
    return model


class NewGELU(nn.Module):
    """GPT-2's tanh-form GELU, written out (as in karpathy/minGPT)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPTBlock(nn.Module):
    """A pre-LayerNorm GPT block (causal self-attention + MLP with a hand-written GELU) on digit rows."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.gelu, self.fc_out = nn.Linear(d, 4 * d), NewGELU(), nn.Linear(4 * d, d)
        self.head = nn.Linear(d, 10)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(-1, 8, 8))
        B, T, C = h.shape
        q, k, v = self.qkv(self.ln1(h)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        att = F.softmax(att, dim=-1)
        h = h + self.proj((att @ v).transpose(1, 2).reshape(B, T, C))
        h = h + self.fc_out(self.gelu(self.fc(self.ln2(h))))
        return self.head(h.mean(1))


class Encoder(nn.Module):
    """torch's TransformerEncoderLayer (ReLU feed-forward, dropout on) over the 8 rows of a digit."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.embed(x.view(-1, 8, 8))).mean(1))


class BNCNN(nn.Module):
    """Conv -> BatchNorm -> in-place ReLU, twice, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.view(-1, 1, 8, 8)).flatten(1))


class MinimalGRUCell(nn.Module):
    """A hand-written gated cell: a sigmoid update gate and a tanh candidate (modules, not fused)."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d_in + d, d)
        self.cand = nn.Linear(d_in + d, d)
        self.sigmoid, self.tanh = nn.Sigmoid(), nn.Tanh()

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        xh = torch.cat([x, h], 1)
        z = self.sigmoid(self.gate(xh))
        return (1 - z) * h + z * self.tanh(self.cand(xh))


class HandRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = MinimalGRUCell(8, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.view(-1, 8, 8)
        h = seq.new_zeros(seq.shape[0], 32)
        for t in range(seq.shape[1]):
            h = self.cell(seq[:, t], h)
        return self.head(h)


class ResBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2, self.norm = nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ResNet(nn.Module):
    """Eight pre-norm residual blocks."""

    def __init__(self, d: int = 64, blocks: int = 8) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(d) for _ in range(blocks)])
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class FunctionalMLP(nn.Module):
    """Linear layers with the activation called as a function in ``forward`` (``F.relu(x)``),
    at PyTorch's default initialisation (sigma_w^2 = 1/3): the textbook net as people write it."""

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor], depth: int = 10, width: int = 64) -> None:
        super().__init__()
        self.act = act
        self.layers = nn.ModuleList(nn.Linear(width if i else 64, width) for i in range(depth - 1))
        self.out = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return self.out(x)


class ReusedReLU(nn.Module):
    """One ReLU module called after three Linear layers (three call sites, one module)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64)
        self.out = nn.Linear(64, 10)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))))


# BERT as Hugging Face builds it from a config (transformers' modeling_bert, written out here:
# transformers is not a dependency): separate query/key/value projections, post-LayerNorm
# residuals, GELU feed-forward, a tanh pooler on the first token, and HF's init (every Linear and
# embedding normal(0, 0.02), biases 0, LayerNorm 1/0).  At that init the attention logits are
# near zero, so the query/key weight gradients are ~1e-4 of the classifier's in every block: a
# probe that compares across roles calls that vanishing gradients.
class BertSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dropout = nn.Dropout(0.1)
        self.heads = heads

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, T, C = h.shape
        q, k, v = (m(h).view(B, T, self.heads, C // self.heads).transpose(1, 2) for m in (self.query, self.key, self.value))
        att = self.dropout(F.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // self.heads), dim=-1))
        return (att @ v).transpose(1, 2).reshape(B, T, C)


class BertAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self = BertSelfAttention(d, heads)
        self.dense, self.norm, self.dropout = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-12), nn.Dropout(0.1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h + self.dropout(self.dense(self.self(h))))


class BertLayer(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int) -> None:
        super().__init__()
        self.attention = BertAttention(d, heads)
        self.intermediate, self.act = nn.Linear(d, d_ff), nn.GELU()
        self.output, self.norm, self.dropout = nn.Linear(d_ff, d), nn.LayerNorm(d, eps=1e-12), nn.Dropout(0.1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.attention(h)
        return self.norm(h + self.dropout(self.output(self.act(self.intermediate(h)))))


class BertStyle(nn.Module):
    """A 3-block BERT encoder over the 8 rows of a digit (plus a CLS token), pooler, classifier.

    A row's token embedding is the sum of one table entry per (column, intensity), an embedding
    table as BERT's word embeddings are (the probe does not count embeddings in the depth profile)."""

    def __init__(self, d: int = 32, heads: int = 4, d_ff: int = 64, blocks: int = 3) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(8 * 17, d, mode="sum")
        self.cls, self.position = nn.Embedding(1, d), nn.Embedding(9, d)
        self.embed_norm, self.embed_dropout = nn.LayerNorm(d, eps=1e-12), nn.Dropout(0.1)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([BertLayer(d, heads, d_ff) for _ in range(blocks)])
        self.pooler, self.pooler_act = nn.Linear(d, d), nn.Tanh()
        self.classifier = nn.Linear(d, 10)
        for m in self.modules():  # BertPreTrainedModel._init_weights
            if isinstance(m, (nn.Linear, nn.Embedding, nn.EmbeddingBag)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.view(-1, 8, 8) + 17 * torch.arange(8)  # (column, intensity) -> one table row
        h = self.embed(ids.reshape(-1, 8)).view(-1, 8, self.cls.weight.shape[1])
        h = torch.cat([self.cls.weight.expand(h.shape[0], 1, -1), h], 1) + self.position.weight
        h = self.embed_dropout(self.embed_norm(h))
        for layer in self.encoder.layer:
            h = layer(h)
        return self.classifier(self.pooler_act(self.pooler(h[:, 0])))


# MobileNetV2 (Sandler et al. 2018) as torchvision builds it, scaled to 8x8 digits: inverted
# residual blocks (1x1 expand -> BN -> ReLU6, 3x3 depthwise -> BN -> ReLU6, 1x1 linear project ->
# BN), torchvision's init (conv kaiming_normal fan_out, BN 1/0, classifier normal(0, 0.01)).
# After BatchNorm about half of every ReLU6 input is below 0, ReLU6's zero side: not saturation.
def _conv_bn(c_in: int, c_out: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.residual = stride == 1 and c_in == c_out
        self.expand_1x1 = _conv_bn(c_in, hidden) if expand != 1 else nn.Identity()
        self.conv_3x3 = _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.reduce_1x1 = _conv_bn(hidden, c_out, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.reduce_1x1(self.conv_3x3(self.expand_1x1(x)))
        return x + h if self.residual else h


class MobileNetV2Style(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(1, 16, 3)
        cfg = [(16, 8, 1, 1), (8, 12, 2, 6), (12, 12, 1, 6), (12, 16, 2, 6), (16, 16, 1, 6)]
        self.layer = nn.Sequential(*[InvertedResidual(*c) for c in cfg])
        self.head = _conv_bn(16, 64)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 10))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(self.layer(self.stem(x.view(-1, 1, 8, 8))))
        return self.classifier(h.mean((2, 3)))


# ---------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One zoo network: how to build and train it, and what the probe must say about it.

    Attributes:
        name: short id.
        build: builds the model (called under ``torch.manual_seed(seed)``).
        kind: the finding kind it must get (``None``: healthy, no warning or error allowed).
        cause: words the finding's cause must contain.
        also: other finding kinds that are consequences, not false alarms.
        steps, lr, batch: training on the digits.
        optim: ``"sgd"`` (plain SGD) or ``"adamw"`` (as transformers are trained).
        data: ``"digits"`` (standardised), ``"pixels"`` (raw 0-255), ``"tokens"`` (ids 0-16) or
            ``"sign"`` (one fixed batch of 20 standard-normal features labelled by the sign of the
            first: a two-class task a net can collapse on to the class prior, where the last
            layer's weight gradient sums to ~0).
        hook: ``hook(step, model, x)`` before each step (inject a NaN...).
        born: run :meth:`Probe.born_dead` on the first batch before training.
        probe: keyword arguments for :class:`Probe`.
        never: phrases no finding's cause or advice may contain (the wrong cause the case tempts).
    """

    name: str
    build: Callable[[], nn.Module]
    kind: str | None = None
    cause: tuple[str, ...] = ()
    also: tuple[str, ...] = ()
    steps: int = 40
    lr: float = 0.05
    batch: int = 128
    optim: str = "sgd"
    data: str = "digits"
    hook: Callable[[int, nn.Module, torch.Tensor], None] | None = None
    born: bool = False
    probe: dict = field(default_factory=dict)
    never: tuple[str, ...] = ()


def _nan_in_data(step: int, model: nn.Module, x: torch.Tensor) -> None:
    if step == 6:
        x[3, 5] = float("nan")


BROKEN: list[Case] = [
    Case("vanishing_sigmoid_depth10", lambda: mlp(nn.Sigmoid, 10), "vanishing_gradients", ("sigmoid",),
         also=("not_zero_centred",), steps=30, lr=0.1),
    Case("vanishing_tanh_small_init", lambda: scaled(mlp(nn.Tanh, 16), sigma_w2=0.25, bias=0.0),
         "vanishing_gradients", ("too small",), also=("loss_trend",), steps=30),
    Case("saturation_tanh_large_init", lambda: scaled(mlp(nn.Tanh, 4), factor=8.0), "saturation",
         ("too large",), also=("exploding_gradients",), steps=30),
    Case("saturation_sigmoid_large_init", lambda: scaled(mlp(nn.Sigmoid, 4), factor=10.0), "saturation",
         ("too large",), also=("not_zero_centred", "vanishing_gradients"), steps=30),
    Case("dying_relu_high_lr", lambda: he(mlp(nn.ReLU, 4)), "dead_units", ("learning rate",),
         also=("vanishing_gradients", "loss_trend"), steps=80, lr=1.8, probe={"window": 20}),
    Case("dying_relu_negative_bias", lambda: scaled(he(mlp(nn.ReLU, 4)), bias=-3.0), "dead_units", ("bias",),
         also=("vanishing_gradients", "born_dead", "loss_trend"), steps=30, probe={"window": 10}),
    Case("born_dead_negative_bias", lambda: scaled(he(mlp(nn.ReLU, 4)), bias=-10.0), "born_dead", ("bias",),
         also=("dead_units", "vanishing_gradients", "loss_trend"), steps=10, born=True, probe={"window": 10}),
    Case("zero_init_tanh", lambda: scaled(mlp(nn.Tanh, 4), const=0.0, bias=0.0), "symmetry", ("zero weights",),
         also=("vanishing_gradients", "loss_trend"), steps=30),
    Case("zero_init_sigmoid", lambda: scaled(mlp(nn.Sigmoid, 4), const=0.0, bias=0.0), "symmetry",
         ("zero weights",), also=("vanishing_gradients", "not_zero_centred", "loss_trend"), steps=30),
    Case("constant_init_relu", lambda: scaled(mlp(nn.ReLU, 4), const=0.02, bias=0.0), "symmetry",
         ("identical",), also=("vanishing_gradients", "loss_trend"), steps=30),
    Case("exploding_relu_sw4_depth20", lambda: scaled(mlp(nn.ReLU, 20), sigma_w2=4.0, bias=0.0),
         "exploding_gradients", ("too large",), also=("non_finite", "loss_trend", "dead_units"), steps=3, lr=1e-6),
    Case("exploding_relu_x30", lambda: scaled(he(mlp(nn.ReLU, 6)), factor=30.0), "exploding_gradients",
         ("too large",), also=("non_finite", "loss_trend", "dead_units", "vanishing_gradients"), steps=3, lr=1e-9),
    # a milder explosion (sigma_w^2 = 16/3: 1.63x per layer) that training tames below 100x: seen at step 0
    Case("exploding_relu_default_x4_depth8", lambda: scaled(mlp(nn.ReLU, 8), factor=4.0), "exploding_gradients",
         ("too large",), also=("loss_trend",), steps=30, lr=1e-3),
    Case("nan_from_data", lambda: he(mlp(nn.ReLU, 4)), "non_finite", ("input",), steps=12, hook=_nan_in_data),
    Case("nan_from_learning_rate", lambda: he(mlp(nn.ReLU, 4)), "non_finite", ("learning rate",),
         also=("exploding_gradients", "loss_trend", "dead_units"), steps=30, lr=40.0),
    Case("uncentred_pixels_relu", lambda: he(mlp(nn.ReLU, 4)), "input_statistics", ("not standardised",),
         also=("dead_units", "loss_trend", "exploding_gradients", "non_finite"), steps=20, lr=0.01, data="pixels"),
    Case("not_zero_centred_sigmoid_deep", lambda: mlp(nn.Sigmoid, 5), "not_zero_centred", ("positive",),
         also=("vanishing_gradients", "loss_trend"), steps=30, lr=0.1),
    Case("plateau_learning_rate_too_low", lambda: he(mlp(nn.ReLU, 4)), "loss_trend", ("learning rate",),
         steps=40, lr=1e-6),
    Case("reused_relu_dead_call_site", lambda: _reused_dead(), "dead_units", ("bias",),
         also=("vanishing_gradients", "born_dead", "loss_trend"), steps=30, probe={"window": 10}),
    # the textbook nets at PyTorch's default init (sigma_w^2 = 1/3), as people write them
    Case("vanishing_sigmoid_default_collapse", lambda: mlp(nn.Sigmoid, 10, d_in=20, d_out=2),
         "vanishing_gradients", ("sigmoid", "per layer"), also=("not_zero_centred", "loss_trend"), steps=80,
         lr=0.1, batch=256, data="sign", never=("learning rate too low",)),
    Case("vanishing_tanh_default_depth20", lambda: mlp(nn.Tanh, 20), "vanishing_gradients",
         ("too small", "per layer"), also=("loss_trend",), steps=40),
    Case("vanishing_gelu_default_depth10", lambda: mlp(nn.GELU, 10), "vanishing_gradients",
         ("too small", "per layer"), also=("loss_trend",), steps=40),
    Case("born_dead_functional_relu_default", lambda: FunctionalMLP(F.relu), "dead_units",
         ("born dead", "variance-preserving"), also=("vanishing_gradients", "loss_trend"), steps=60,
         never=("learning rate",)),
]


def _reused_dead() -> nn.Module:
    m = he(ReusedReLU())
    with torch.no_grad():
        m.fc2.bias.fill_(-10.0)
    return m


HEALTHY: list[Case] = [
    Case("mlp_relu_he", lambda: he(mlp(nn.ReLU, 6, width=128)), steps=60),
    Case("cnn_batchnorm_inplace_relu", BNCNN, steps=60),
    # raw pixels 0-255 into conv -> BatchNorm: the scale never reaches an activation (trains as well)
    Case("cnn_batchnorm_raw_pixels", BNCNN, steps=60, data="pixels"),
    Case("transformer_encoder", Encoder, steps=60),
    Case("gpt_block_handwritten_gelu", GPTBlock, steps=60),
    Case("lstm", lambda: Recurrent(nn.LSTM), steps=60, lr=0.5),
    Case("gru", lambda: Recurrent(nn.GRU), steps=60, lr=0.5),
    Case("handwritten_rnn_cell", HandRNN, steps=60, lr=0.5),
    Case("residual_mlp", ResNet, steps=60),
    Case("bert_style_hf_init", BertStyle, steps=60, lr=1e-3, batch=64, optim="adamw", data="tokens"),
    Case("mobilenet_v2_style_relu6", MobileNetV2Style, steps=40, lr=0.1, batch=64),
]


# ---------------------------------------------------------------------------- running and judging
def train(case: Case, model: nn.Module, seed: int, probe: Probe | None = None) -> list[float]:
    """SGD (or AdamW) on the case's data; returns the losses. ``probe.step(loss=...)`` after each step."""
    opt = (torch.optim.AdamW(model.parameters(), lr=case.lr) if case.optim == "adamw"
           else torch.optim.SGD(model.parameters(), lr=case.lr))
    losses = []
    model.train()
    for i, (x, y) in enumerate(batches(case.steps, case.batch, seed, case.data)):
        if case.hook is not None:
            case.hook(i, model, x)
        if i == 0 and case.born and probe is not None:
            probe.born_dead(x)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if probe is not None:
            probe.step(loss=loss)
        losses.append(loss.item())
    return losses


def run(case: Case, seed: int = 0, with_probe: bool = True) -> tuple[list[Any], list[float], Probe | None]:
    """Build (seeded), train, and return ``(findings, losses, probe)``."""
    torch.manual_seed(seed)
    model = case.build()
    torch.manual_seed(seed + 1000)  # dropout
    if not with_probe:
        return [], train(case, model, seed), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Probe(model, **case.probe) as probe:
            losses = train(case, model, seed, probe)
        return probe.findings(), losses, probe


@dataclass
class Verdict:
    case: str
    detected: bool
    right_cause: bool
    false_alarms: list[str]
    findings: list[str]

    @property
    def ok(self) -> bool:
        return self.detected and self.right_cause and not self.false_alarms


def judge(case: Case, findings: list) -> Verdict:
    loud = [f for f in findings if f.severity in ("warning", "error")]
    if case.kind is None:
        return Verdict(case.name, True, True, [f.kind for f in loud], [str(f) for f in findings])
    hits = [f for f in findings if f.kind == case.kind]
    right = any(all(w.lower() in f.cause.lower() for w in case.cause) for f in hits)
    alarms = [f.kind for f in loud if f.kind != case.kind and f.kind not in case.also]
    alarms += [f"{f.kind}: {w!r}" for f in findings for w in case.never
               if w.lower() in (f.cause + " " + f.advice).lower()]
    return Verdict(case.name, bool(hits), right, alarms, [str(f) for f in findings])
