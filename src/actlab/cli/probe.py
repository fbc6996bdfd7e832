"""``actlab probe``: train a small MLP with any catalog activation on sklearn's digits with the
probe attached, and print what it finds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from actlab.cli.app import app, check_output, console, fail, note, print_json, write_json
from actlab.cli.catalog import _parse_params, _spec

INITS = ("default", "he", "xavier")


@app.command("probe")
def probe_cmd(
    activation: Annotated[str, typer.Argument(help="Hidden-layer activation (see `actlab list`).")] = "relu",
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Hyperparameter KEY=VALUE.")] = None,
    depth: Annotated[int, typer.Option("--depth", help="Linear layers.")] = 6,
    width: Annotated[int, typer.Option("--width", help="Hidden units per layer.")] = 64,
    init: Annotated[str, typer.Option("--init", help="Weight init: default (torch's), he or xavier.")] = "default",
    weight_scale: Annotated[float, typer.Option("--weight-scale", help="Multiply the initial weights.")] = 1.0,
    bias: Annotated[float | None, typer.Option("--bias", help="Fill the hidden biases with this value.")] = None,
    lr: Annotated[float, typer.Option("--lr", help="SGD learning rate.")] = 0.05,
    steps: Annotated[int, typer.Option("--steps", help="Training steps (batches of 128 digits).")] = 100,
    every: Annotated[int, typer.Option("--every", help="Record every k steps.")] = 1,
    window: Annotated[int, typer.Option("--window", help="Steps a unit must stay dead.")] = 50,
    saturation: Annotated[float, typer.Option("--saturation", help="Saturated: |f'| below this x max|f'|.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    json_: Annotated[bool, typer.Option("--json", help="Print records and findings as JSON to stdout.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write records and findings as JSON.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the records as CSV.")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Directory for the four PNG plots.")] = None,
) -> None:
    """Train an MLP on digits with the probe attached; print the per-layer table and the findings.

    Examples: `actlab probe sigmoid --depth 10 --lr 0.1` (vanishing gradients),
    `actlab probe relu --bias -5 --window 20` (dead units), `actlab probe tanh --weight-scale 8`
    (saturation), `actlab probe relu --init he --plots out/` (healthy).
    """
    import warnings

    check_output(json_out, option="--json-out")
    check_output(csv_out, option="--csv")
    check_output(plots, kind="dir", option="--plots")
    for name, v, ok, want in (("--lr", lr, lr > 0, "> 0"), ("--weight-scale", weight_scale, True, ""),
                              ("--bias", bias if bias is not None else 0.0, True, ""),
                              ("--saturation", saturation, 0 < saturation < 1, "in (0, 1)")):
        if not math.isfinite(v) or not ok:
            raise fail(f"{name} must be a finite number{' ' + want if want else ''}, got {v}")
    for name, v in (("--every", every), ("--window", window)):
        if v < 1:
            raise fail(f"{name} must be a positive integer, got {v}")
    if init not in INITS:
        raise fail(f"unknown --init {init!r}; choose from {', '.join(INITS)}")
    for name, v in (("--depth", depth), ("--width", width), ("--steps", steps)):
        if v < 1:
            raise fail(f"{name} must be a positive integer, got {v}")
    if depth < 2:
        raise fail(f"--depth must be at least 2 (one hidden layer), got {depth}")
    spec = _spec(activation)
    params = _parse_params(spec, param or [])
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover
        raise fail("actlab probe needs scikit-learn for the digits data") from None

    import torch
    import torch.nn.functional as F
    from torch import nn

    from actlab.nn import module_class
    from actlab.probe import Probe

    torch.manual_seed(seed)
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    y = torch.tensor(d.target)
    layers: list[nn.Module] = []
    fan = x.shape[1]
    cls = module_class(spec)
    k = spec.group_size(params)
    for _ in range(depth - 1):
        layers += [nn.Linear(fan, width * k), cls(**params)]
        fan = width
    layers.append(nn.Linear(fan, 10))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                if init == "he":
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif init == "xavier":
                    nn.init.xavier_normal_(m.weight)
                    nn.init.zeros_(m.bias)
                m.weight.mul_(weight_scale)
                if bias is not None and m is not layers[-1]:
                    m.bias.fill_(bias)
    try:
        probe = Probe(model, every=every, window=window, saturation=saturation)
    except ValueError as e:
        raise fail(str(e)) from None
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    with probe:
        probe.born_dead(x[:128])
        for _ in range(steps):
            idx = torch.randint(0, len(x), (128,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    from actlab.probe.export import document

    # With --json, stdout carries the JSON alone: the table is left out and notices go to stderr.
    wrote = note if json_ else (lambda m: console.print(m, markup=False, highlight=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if json_:
            print_json(document(probe.read(), probe.findings(), probe.thresholds))
        else:
            probe.summary(console=console)
        for w in caught:
            note(str(w.message))
        if json_out is not None:
            wrote(f"wrote {probe.to_json(json_out)}")
        if csv_out is not None:
            wrote(f"wrote {probe.to_csv(csv_out)}")
        if plots is not None:
            for kind in ("grad_norm", "dead_saturated", "activations", "grad_profile"):
                wrote(f"wrote {probe.plot(kind, out=plots / f'{kind}.png')}")
