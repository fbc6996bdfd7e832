"""Small networks, healthy and deliberately broken, trained on sklearn's digits (8x8 images)."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    return x, torch.tensor(d.target, dtype=torch.long)


def batches(n_steps: int, batch: int = 128, seed: int = 0):
    x, y = digits()
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        yield x[idx], y[idx]


def mlp(act: type[nn.Module] = nn.ReLU, depth: int = 4, width: int = 64, d_in: int = 64, d_out: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth - 1):
        layers += [nn.Linear(d, width), act()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def he_init(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.view(-1, 1, 8, 8)).flatten(1))


class SeqLSTM(nn.Module):
    """Reads an 8x8 digit as 8 rows of 8 features."""

    def __init__(self, cell: type[nn.Module] = nn.LSTM) -> None:
        super().__init__()
        self.rnn = cell(8, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.view(-1, 8, 8))
        return self.head(out[:, -1])


class Encoder(nn.Module):
    """A transformer encoder layer (LayerNorm, functional GELU) over the 8 rows of a digit."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, activation=F.gelu,
                                                batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.embed(x.view(-1, 8, 8))).mean(1))


class Block(nn.Module):
    """A custom container calling torch.relu and F.silu inside forward."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.parts = nn.ModuleDict({"a": nn.Linear(d, d), "b": nn.Linear(d, d)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.parts["a"](x))
        return x + F.silu(self.parts["b"](h))


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(64, 32)
        self.blocks = nn.ModuleList([Block(32), nn.Sequential(Block(32), nn.Tanh())])
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for b in self.blocks:
            h = b(h)
        return self.out(h)


def train(model: nn.Module, steps: int = 40, lr: float = 0.05, batch: int = 128, probe=None, seed: int = 0,
          hook=None) -> list[float]:
    """Plain SGD on digits; returns the losses (floats). ``hook(step, model)`` runs before each step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    model.train()
    for i, (x, y) in enumerate(batches(steps, batch, seed)):
        if hook is not None:
            hook(i, model)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
