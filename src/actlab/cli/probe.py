"""``actlab probe``: ``mlp`` trains an MLP on digits through the lab (data, model, init, trainer)
with the probe attached; ``run`` probes your own training script unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from actlab.cli.app import app, check_output, console, default_group, fail
from actlab.cli.catalog import _parse_params, _spec

probe_app = typer.Typer(cls=default_group("mlp"), no_args_is_help=True,
                        help="Watch training with the probe: an MLP on digits, or your own script "
                             "(`actlab probe NAME` = `actlab probe mlp NAME`).")
app.add_typer(probe_app, name="probe")

INITS = ("default", "he", "xavier", "critical")
_SCHEME = {"default": "torch_default", "he": "he_normal", "xavier": "xavier_normal", "critical": "critical"}


def _outputs(probe: Any, *, json_stdout: bool, json_out: Path | None, csv_out: Path | None, plots: Path | None,
             html_out: Path | None, title: str | None = None, wide: bool = False) -> None:
    """Print the summary (or JSON to stdout) and write the files asked for."""
    if json_stdout:
        from actlab.probe.export import to_json

        with __import__("tempfile").TemporaryDirectory() as tmp:
            written = to_json(probe.read(), probe.findings(), probe.thresholds, Path(tmp) / "p.json")
            doc = json.loads(written.read_text())
        typer.echo(json.dumps(doc))
    else:
        probe.summary(console=console, wide=wide)
    say = (lambda m: None) if json_stdout else (lambda m: console.print(m))
    if json_out is not None:
        say(f"wrote {probe.to_json(json_out)}")
    if csv_out is not None:
        say(f"wrote {probe.to_csv(csv_out)}")
    if html_out is not None:
        say(f"wrote {probe.to_html(html_out, title=title)}")
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        for kind in ("grad_norm", "dead_saturated", "activations", "grad_profile"):
            say(f"wrote {probe.plot(kind, out=plots / f'{kind}.png')}")


JsonFlag = Annotated[bool, typer.Option("--json", help="Print records and findings as JSON to stdout.")]
JsonOut = Annotated[Path | None, typer.Option("--json-out", help="Write records and findings as JSON to a file.")]
CsvOut = Annotated[Path | None, typer.Option("--csv", help="Write the records as CSV.")]
Plots = Annotated[Path | None, typer.Option("--plots", help="Directory for the four PNG plots.")]
Every = Annotated[int, typer.Option("--every", help="Record every k steps.")]
Window = Annotated[int, typer.Option("--window", help="Steps a unit must stay dead.")]
Wide = Annotated[bool, typer.Option("--wide", help="Every column in the table (the default fits 100 columns).")]


@probe_app.command("mlp")
def mlp_cmd(
    activation: Annotated[str, typer.Argument(help="Hidden-layer activation (see `actlab list`).")] = "relu",
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Hyperparameter KEY=VALUE.")] = None,
    depth: Annotated[int, typer.Option("--depth", help="Linear layers.")] = 6,
    width: Annotated[int, typer.Option("--width", help="Hidden units per layer.")] = 64,
    init: Annotated[str, typer.Option("--init", help="Weight init: default (torch's), he, xavier or critical.")]
    = "default",
    weight_scale: Annotated[float, typer.Option("--weight-scale", help="Multiply the initial weights.")] = 1.0,
    bias: Annotated[float | None, typer.Option("--bias", help="Fill the hidden biases with this value.")] = None,
    lr: Annotated[float, typer.Option("--lr", help="SGD learning rate.")] = 0.05,
    steps: Annotated[int, typer.Option("--steps", help="Training steps (batches of 128 digits).")] = 100,
    every: Every = 1,
    window: Window = 50,
    saturation: Annotated[float, typer.Option("--saturation", help="Saturated: |f'| below this x max|f'|.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    json_stdout: JsonFlag = False,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    plots: Plots = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report.")] = None,
    wide: Wide = False,
) -> None:
    """Train an MLP on digits (lab data, model, init and trainer) with the probe attached; print the
    per-layer table and the findings.

    Examples: `actlab probe mlp sigmoid --depth 10 --lr 0.1` (vanishing gradients),
    `actlab probe mlp relu --bias -5 --window 20` (dead units), `actlab probe mlp tanh --weight-scale 8`
    (saturation), `actlab probe mlp relu --init he --plots out/` (healthy).
    """
    import math

    # Everything the user typed is checked before any work (and before torch is imported).
    _check_outputs(json_out, csv_out, plots, html_out)
    for name, v, ok, want in (("--lr", lr, lr > 0, "> 0"), ("--weight-scale", weight_scale, True, ""),
                              ("--bias", bias if bias is not None else 0.0, True, ""),
                              ("--saturation", saturation, 0 < saturation < 1, "in (0, 1)")):
        if not math.isfinite(v) or not ok:
            raise fail(f"{name} must be a finite number{' ' + want if want else ''}, got {v}")
    import torch

    from actlab.lab import MLP, TrainConfig, init_weights, load_dataset, train
    from actlab.probe import Probe

    spec = _spec(activation)
    params = _parse_params(spec, param or [])
    if init not in INITS:
        raise fail(f"unknown --init {init!r}; choose from {', '.join(INITS)}")
    for name, v in (("--depth", depth), ("--width", width), ("--steps", steps), ("--every", every),
                    ("--window", window)):
        if v < 1:
            raise fail(f"{name} must be a positive integer, got {v}")
    if depth < 2:
        raise fail(f"--depth must be at least 2 (one hidden layer), got {depth}")
    try:
        data = load_dataset("digits", seed=seed)
    except ImportError:  # pragma: no cover
        raise fail("actlab probe mlp needs scikit-learn for the digits data") from None
    torch.manual_seed(seed)
    model = MLP(data.x_train.shape[1], 10, depth=depth - 1, width=width, activation=spec.name,
                activation_params=params or None)
    init_weights(model, _SCHEME[init], seed=seed)
    with torch.no_grad():
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        for m in linears:
            m.weight.mul_(weight_scale)
            if bias is not None and m is not linears[-1] and m.bias is not None:
                m.bias.fill_(bias)
    try:
        probe = Probe(model, every=every, window=window, saturation=saturation)
    except ValueError as e:
        raise fail(str(e)) from None
    probe.born_dead(data.x_train[:128])
    train(model, data, TrainConfig(optimiser="sgd", lr=lr, batch_size=128, steps=steps, seed=seed,
                                   eval_every=steps, threads=1), probe=probe)
    _outputs(probe, json_stdout=json_stdout, json_out=json_out, csv_out=csv_out, plots=plots, html_out=html_out,
             wide=wide)


@probe_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_cmd(
    ctx: typer.Context,
    script: Annotated[Path, typer.Argument(help="Your training script; arguments after it are passed to it.")],
    every: Every = 1,
    window: Window = 50,
    html_out: Annotated[Path, typer.Option("--html", help="The HTML probe report (one per model: -1, -2...).")]
    = Path("probe_report.html"),
    json_stdout: JsonFlag = False,
    json_out: JsonOut = None,
    wide: Wide = False,
) -> None:
    """Run SCRIPT with the probe attached to every model an optimizer steps (from the optimizer's
    making, so its first step is seen); print the findings at exit and write a self-contained HTML report.

    Options for actlab go before SCRIPT; everything after it is the script's own:
    `actlab probe run --html out.html train.py --epochs 3`.
    """
    from actlab.probe.script import run_script

    _check_outputs(json_out, None, None, html_out)
    if not script.is_file():
        raise fail(f"no such script: {str(script)!r}")
    for name, v in (("--every", every), ("--window", window)):
        if v < 1:
            raise fail(f"{name} must be a positive integer, got {v}")
    code = 0
    try:
        found = run_script(script, list(ctx.args), every=every, window=window)
    except SystemExit as e:  # the script's own exit: report, then exit as it did
        found = e.probes  # type: ignore[attr-defined]
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:
        found = getattr(e, "probes", None)
        err = f"{type(e).__name__}: {e}"
        if found is None or not found.probes:
            raise fail(f"{script} raised {err}", code=1) from None
        console.print(f"[bold red]{escape(str(script))} raised {escape(err)}[/]; what the probe saw until then:")
        code = 1
    if not found.probes:
        raise fail(f"{script} made no torch.optim optimizer over a model's parameters: nothing to probe (the probe "
                   "attaches to the models an optimizer is made for)", code=1 if code == 0 else code)
    for i, probe in enumerate(found.probes):
        out = html_out if len(found.probes) == 1 else html_out.with_name(f"{html_out.stem}-{i + 1}{html_out.suffix}")
        _outputs(probe, json_stdout=json_stdout, json_out=None if json_out is None or i else json_out, csv_out=None,
                 plots=None, html_out=out, title=f"actlab probe: {type(probe.model).__name__} in {script.name}",
                 wide=wide)
    if code:
        raise typer.Exit(code)


def _check_outputs(json_out: Path | None, csv_out: Path | None, plots: Path | None, html_out: Path | None) -> None:
    check_output(json_out, option="--json-out")
    check_output(csv_out, option="--csv")
    check_output(plots, kind="dir", option="--plots")
    check_output(html_out, option="--html")
