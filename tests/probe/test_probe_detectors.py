"""The detectors beyond the zoo's table: stopping at the first NaN, the info lines that say what
the probe could not see, one row per call site, loss divergence, causes only with evidence."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from zoo import Recurrent, ReusedReLU, he, mlp, scaled

from actlab.probe import NonFiniteError, Probe


def _x(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def _train(model, probe, steps, lr=0.05, poison=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        x, y = _x(seed=i)
        if poison is not None and i == poison:
            x[0, 0] = float("nan")
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        probe.step(loss=loss)


def test_on_nonfinite_raise_names_input_step_and_pass():
    torch.manual_seed(0)
    model = he(mlp(nn.ReLU, 3))
    probe = Probe(model, on_nonfinite="raise").attach()
    with pytest.raises(NonFiniteError, match=r"step 4 in the model's input \(forward pass\)"):
        _train(model, probe, 8, poison=4)


def test_on_nonfinite_raise_names_the_first_layer():
    torch.manual_seed(0)
    model = he(mlp(nn.ReLU, 3))
    with torch.no_grad():
        model[2].weight[0, 0] = float("inf")
    probe = Probe(model, on_nonfinite="raise", param_outputs=True).attach()
    with pytest.raises(NonFiniteError, match=r"step 0 in layer 2 \(forward pass"):
        _train(model, probe, 2)


def test_on_nonfinite_rejects_unknown_mode():
    with pytest.raises(ValueError, match="on_nonfinite must be 'record' or 'raise', got 'stop'"):
        Probe(mlp(nn.ReLU, 2), on_nonfinite="stop")


def test_eval_mode_only_says_it_saw_nothing():
    model = he(mlp(nn.ReLU, 3)).eval()
    with Probe(model) as probe:
        model(_x()[0])
    found = probe.findings()
    assert [f.kind for f in found] == ["blind"] and found[0].severity == "info"
    assert "eval mode" in found[0].cause and "nothing was seen" in found[0].message
    text = _summary_text(probe)
    assert "nothing looks wrong" not in text and "nothing recorded" in text


def test_compiled_model_without_records_says_so():
    model = he(mlp(nn.ReLU, 3))
    model.compile()  # marks the module compiled; nothing runs here
    probe = Probe(model)
    found = probe.findings()
    assert found[0].kind == "blind" and "compiled" in found[0].cause


def test_fused_rnn_gates_are_an_info_line():
    torch.manual_seed(0)
    model = Recurrent(nn.LSTM)
    with Probe(model) as probe:
        _train(model, probe, 3, lr=0.1)
    blind = [f for f in probe.findings() if f.kind == "blind"]
    assert any("fused rnn" in f.message for f in blind)
    assert any("shorter than the dead window" in f.message for f in blind)
    assert all(f.severity == "info" for f in blind)


def test_torch_activations_outside_the_catalog_are_an_info_line():
    # nn.Hardswish (MobileNetV3) has no catalog entry: its layer has no row, and the findings say
    # so instead of "nothing looks wrong"; the catalogued ones beside it are not listed
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Hardswish(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32),
                          nn.Tanhshrink(), nn.Linear(32, 10), nn.Softmax(-1))
    with Probe(model, window=2) as probe:
        _train(model, probe, 4)
    found = probe.findings()
    blind = [f for f in found if f.kind == "blind"]
    assert len(blind) == 1 and blind[0].severity == "info"
    assert blind[0].layers == ["1 (Hardswish)", "5 (Tanhshrink)"]  # not ReLU, not the output Softmax
    assert "not judged" in blind[0].message
    assert [layer.activation for layer in probe.layers if layer.kind == "activation"] == ["relu"]


def test_reused_module_one_row_per_call_site():
    torch.manual_seed(0)
    model = he(ReusedReLU())
    with Probe(model) as probe:
        _train(model, probe, 2)
    names = [l.name for l in probe.iter_layers() if l.spec is not None]
    assert names == ["act", "act#1", "act#2"]
    steps0 = [r for r in probe.records() if r.step == 0 and r.activation == "relu"]
    assert len(steps0) == 3 and all(not math.isnan(r.mean) for r in steps0)


def test_loss_divergence_from_step_losses():
    torch.manual_seed(0)
    model = he(mlp(nn.ReLU, 3))
    probe = Probe(model).attach()
    for i in range(30):  # a loss that only rises: the trend is read from what step() is given
        probe.step(loss=torch.tensor(1.0 + i))
    model(_x()[0])
    found = [f for f in probe.findings() if f.kind == "loss_trend"]
    assert found and "diverging" in found[0].message
    assert found[0].figures["last"] > 2 * found[0].figures["first"]


def _loss_trend(losses, update_ratio=1e-3):
    from types import SimpleNamespace

    from actlab.probe.findings import Thresholds
    from actlab.probe.findings.loss import loss_findings

    data = SimpleNamespace(losses=list(enumerate(losses)))
    records = [SimpleNamespace(step=i, update_ratio=update_ratio, layer="0", kind="parametrised")
               for i in range(len(losses))]
    return loss_findings(data, records, Thresholds(), [])


def test_loss_blown_up_by_the_first_step_is_a_divergence_when_the_updates_show_it():
    """4 at init, then ~1000 from the first update on, falling a little: the first fifth's median
    is already up, the initial loss and the update ratios tell it."""
    g = torch.Generator().manual_seed(0)
    losses = [4.0] + [float(1000 - 5 * i + 200 * torch.rand(1, generator=g)) for i in range(59)]
    found = _loss_trend(losses, update_ratio=300.0)
    assert len(found) == 1 and "diverged at the start" in found[0].message, found
    assert "learning rate too high" in found[0].cause and found[0].figures["initial"] == 4.0
    assert not _loss_trend(losses, update_ratio=1e-3) or "diverg" not in _loss_trend(losses, 1e-3)[0].message


def test_a_fast_fall_then_noise_is_not_a_plateau_and_a_noisy_flat_one_says_why():
    g = torch.Generator().manual_seed(0)
    noise = [float(x) for x in torch.randn(60, generator=g)]
    fell = [5.0 - 2.0 * min(i, 10) / 10 + 0.5 * n for i, n in enumerate(noise)]  # 5 -> 3 in 10 steps
    assert not _loss_trend(fell), _loss_trend(fell)
    flat = [3.0 + 0.8 * n for n in noise]
    found = _loss_trend(flat)
    assert len(found) == 1 and "plateau" in found[0].message
    assert "noise" in found[0].message or "less than" in found[0].message


def test_tanh_low_saturation_is_not_blamed():
    """A zero-initialised tanh net: 0% saturated, so the cause is the zero weights, not saturation."""
    torch.manual_seed(0)
    model = scaled(mlp(nn.Tanh, 4), const=0.0, bias=0.0)
    with Probe(model) as probe:
        _train(model, probe, 20)
    found = probe.findings()
    assert all("saturat" not in f.cause for f in found), [f.cause for f in found]
    assert any("zero weights" in f.cause for f in found)


def test_large_weights_are_not_called_small():
    torch.manual_seed(0)
    model = scaled(he(mlp(nn.ReLU, 6)), factor=30.0)
    with Probe(model) as probe:
        _train(model, probe, 2, lr=1e-9)
    causes = " ".join(f.cause for f in probe.findings())
    assert "too large" in causes and "too small" not in causes


def test_explosion_at_the_start_is_told_with_the_weights_and_the_mean_field():
    """sigma_w^2 = 16/3 at depth 8 (1.63x per layer): ~20x growth at step 0, under the 100x of the
    window rule; the large weights corroborate it, and the mean field predicts the measured factor."""
    torch.manual_seed(0)
    model = scaled(mlp(nn.ReLU, 8), factor=4.0)
    with Probe(model) as probe:
        _train(model, probe, 30, lr=1e-3)
    found = [f for f in probe.findings() if f.kind == "exploding_gradients"]
    assert len(found) == 1, probe.findings()
    f = found[0]
    assert f.figures["step"] == 0 and "first recorded step" in f.message and "too large" in f.cause
    assert 10 <= f.figures["out_grad_growth_to_input"] < 100
    n = len(f.figures["out_grad_norm"])
    measured = f.figures["out_grad_growth_to_input"] ** (1 / (n - 1))
    assert f.figures["mean_field_per_layer"] == pytest.approx(math.sqrt(16 / 3 / 2), rel=0.05)
    assert measured == pytest.approx(f.figures["mean_field_per_layer"], rel=0.15)


class _ResidualReLU(nn.Module):
    """h + relu(W h) at He init: the stream's variance doubles per block, no weight is too large."""

    def __init__(self, blocks: int = 8, width: int = 64):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.acts = nn.ModuleList(nn.ReLU() for _ in range(blocks))
        self.out = nn.Linear(width, 10)
        for fc in self.fcs:
            nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        for fc, act in zip(self.fcs, self.acts):
            x = x + act(fc(x))
        return self.out(x)


def test_growth_at_the_start_without_large_weights_is_not_called_exploding():
    torch.manual_seed(0)
    model = _ResidualReLU()
    with Probe(model) as probe:
        _train(model, probe, 10, lr=1e-3)
    data = probe.read()
    first = [r for r in data.records if r.step == 0]
    from actlab.probe.findings.profile import growth

    assert growth(data, first).to_output >= 10  # the stream grows as much as the case above
    assert not [f for f in probe.findings() if f.kind == "exploding_gradients"], probe.findings()


def test_raw_inputs_normalised_right_after_the_first_layer_are_an_info_line():
    from zoo import BNCNN, raw_pixels

    torch.manual_seed(0)
    model = BNCNN()
    x, y = raw_pixels()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Probe(model) as probe:
        for i in range(5):
            opt.zero_grad()
            F.cross_entropy(model(x[i * 64:(i + 1) * 64]), y[i * 64:(i + 1) * 64]).backward()
            opt.step()
            probe.step()
    found = [f for f in probe.findings() if f.kind == "input_statistics"]
    assert [f.severity for f in found] == ["info"], found
    assert found[0].figures["normalised_by"] == "features.1" and found[0].figures["mean"] > 10


def _summary_text(probe) -> str:
    from rich.console import Console

    console = Console(record=True, width=100)
    probe.summary(console=console)
    return console.export_text()


@pytest.mark.parametrize("when", ["wrapped", "before", "after"])
def test_compiled_model_is_probed(when):
    """Probe(torch.compile(m)), or m attached before or after its first compiled call."""
    torch.manual_seed(0)
    model = he(mlp(nn.ReLU, 3))
    compiled = torch.compile(model, backend="eager")  # the eager backend: no C compiler needed
    x, y = _x()
    if when == "after":
        compiled(x)
    probe = Probe(compiled if when == "wrapped" else model).attach()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(compiled(x), y).backward()
        opt.step()
    probe.detach()
    assert probe.steps() == [0, 1, 2]
    assert {r.layer for r in probe.records() if r.activation == "relu"} == {"1", "3"} or \
        {r.layer for r in probe.records() if r.activation == "relu"} == {"_orig_mod.1", "_orig_mod.3"}
    blind = [f for f in probe.findings() if f.kind == "blind"]
    assert any("compiled" in f.message and f.severity == "info" for f in blind)


@pytest.mark.parametrize("act", [nn.Tanh, nn.GELU, nn.Sigmoid])
def test_compiled_model_with_any_activation_module(act):
    # torch.tanh & co. called by a module inside a compiled forward: the probe's bookkeeping runs
    # outside the trace (dynamo raised an internal error tracing it); training is unchanged
    def losses(probe: bool):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 10))
        compiled = torch.compile(model, backend="eager")
        p = Probe(compiled).attach() if probe else None
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        out = []
        for i in range(3):
            x, y = _x(seed=i)
            opt.zero_grad()
            loss = F.cross_entropy(compiled(x), y)
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out, p

    plain, _ = losses(False)
    probed, p = losses(True)
    assert probed == plain
    assert p.steps() == [0, 1, 2]
    assert {r.layer for r in p.records() if r.activation} == {"_orig_mod.1", "_orig_mod.3"}


def test_handwritten_tanh_gelu_is_one_gelu_tanh_row():
    from zoo import GPTBlock

    torch.manual_seed(0)
    model = GPTBlock()
    with Probe(model) as probe:
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        x, y = _x()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    acts = {r.layer: r.activation for r in probe.records() if r.activation}
    assert acts.get("gelu") == "gelu_tanh"
    assert not any("tanh" == a for a in acts.values()), acts  # its inner torch.tanh is not a layer


def test_third_party_class_from_the_declared_table():
    class QuickGELUActivation(nn.Module):  # as transformers declares it, but the inside is irrelevant
        def forward(self, x):
            return x * torch.sigmoid(1.702 * x)

    QuickGELUActivation.__module__ = "transformers.activations"
    QuickGELUActivation.__qualname__ = "QuickGELUActivation"
    from actlab.probe.attribution import match_module

    spec, params, how = match_module(QuickGELUActivation())
    assert (spec.name, params, how) == ("swish", {"beta": 1.702}, "table")


def test_unknown_module_matched_on_the_grid_and_others_not():
    from actlab.probe.attribution import match_module

    class MySoftplus(nn.Module):
        def forward(self, x):
            return torch.log1p(torch.exp(x))

    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x

    class Noisy(nn.Module):
        def forward(self, x):
            return x + torch.randn_like(x)

    assert match_module(MySoftplus())[0].name == "softplus"
    assert match_module(MySoftplus())[2] == "grid"
    assert match_module(Doubler()) is None
    state = torch.random.get_rng_state()
    assert match_module(Noisy()) is None
    assert torch.equal(torch.random.get_rng_state(), state)  # the grid check drew nothing


def test_gates_are_not_judged_as_hidden_activations():
    from zoo import HandRNN

    torch.manual_seed(0)
    model = HandRNN()
    with Probe(model) as probe:
        _train(model, probe, 20, lr=0.5)
    role = {l.name: l.role for l in probe.layers if l.spec is not None}
    assert role == {"cell.sigmoid": "gate", "cell.tanh": "hidden"}  # one row per call site, not per time step
    assert not any("tanh" in f.advice and "cell.sigmoid" in f.layers for f in probe.findings())


def test_roles_of_sigmoid_mlp_and_attention():
    from actlab.probe.attribution import roles

    lin = nn.Linear(4, 4)
    x = torch.randn(2, 4, requires_grad=True) * 1.0  # a signal, not a leaf parameter
    h = torch.sigmoid(x)           # feeds a weight: hidden
    g = torch.sigmoid(x * 2)       # only multiplies: a gate
    a = torch.softmax(x @ x.T, -1)  # meets a signal in a matmul: attention
    out = lin(h) * g + (a @ x)
    assert roles(out, {0: h.grad_fn, 1: g.grad_fn, 2: a.grad_fn}) == {0: "hidden", 1: "gate", 2: "attention"}
    d = torch.sigmoid(x * 3)       # dropout's mask, then a weight: hidden (a mask is no signal)
    out2 = lin(F.dropout(d, 0.5, True))
    assert roles(out2, {0: d.grad_fn}) == {0: "hidden"}
    p = torch.sigmoid(lin(h))      # the model's output (through a view too): output
    q = p.view(-1)
    assert roles((h.sum(), q), {0: h.grad_fn, 3: p.grad_fn}) == {0: "hidden", 3: "output"}


class _SwiGLU(nn.Module):
    """A Llama-style gated FFN: down(silu(gate(x)) * up(x)); silu is the block's activation."""

    def __init__(self, d: int = 64, h: int = 128):
        super().__init__()
        self.gate, self.up, self.down, self.act = nn.Linear(d, h), nn.Linear(d, h), nn.Linear(h, d), nn.SiLU()
        self.sig = nn.Sigmoid()

    def forward(self, x):
        x = x + self.down(self.act(self.gate(x)) * self.up(x))
        return x * self.sig(x)  # a sigmoid gate multiplying the signal


def test_gated_ffn_activation_is_hidden_and_a_sigmoid_gate_is_a_gate():
    torch.manual_seed(0)
    model = nn.Sequential(_SwiGLU(), _SwiGLU(), nn.Linear(64, 10))
    with Probe(model) as probe:
        _train(model, probe, 3)
    role = {l.name: l.role for l in probe.layers if l.spec is not None}
    assert role == {"0.act": "hidden", "0.sig": "gate", "1.act": "hidden", "1.sig": "gate"}, role


def test_saturated_output_sigmoid_is_said_not_warned():
    """A binary classifier's sigmoid on the logits saturates as it grows confident (BCE keeps the
    gradient p - y): an info line; the same sigmoid inside the net is still judged."""
    def train(model):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        with Probe(model) as probe:
            for i in range(150):
                x, y = _x(seed=i)
                opt.zero_grad()
                F.binary_cross_entropy(model(x).squeeze(1), (x[:, 0] > 0).float()).backward()
                opt.step()
                probe.step()
        return probe

    torch.manual_seed(0)
    probe = train(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid()))
    found = [f for f in probe.findings() if f.kind == "saturation"]
    assert [f.severity for f in found] == ["info"] and found[0].figures["role"] == "output", found
    assert {l.name: l.role for l in probe.read().layers if l.spec is not None}["3"] == "output"
    torch.manual_seed(0)
    hidden = train(nn.Sequential(nn.Linear(64, 64), nn.Sigmoid(), nn.Linear(64, 1), nn.Sigmoid()))
    assert {l.name: l.role for l in hidden.read().layers if l.spec is not None} == {"1": "hidden", "3": "output"}


def test_summary_nan_trend_legend_and_width():
    from rich.console import Console

    torch.manual_seed(0)
    model = he(mlp(nn.ReLU, 3))
    with Probe(model) as probe:
        _train(model, probe, 6, lr=0.05)
        with torch.no_grad():
            model[2].weight[0, 0] = float("nan")
        _train(model, probe, 1)
    console = Console(record=True, width=100)
    probe.summary(console=console)
    text = console.export_text()
    assert "→nan" in text  # a value that became NaN, not a blank
    assert "grad: norm of the layer's parameter gradients" in text  # the legend
    assert max(len(line) for line in text.splitlines()) <= 100
    wide = Console(record=True, width=160)
    probe.summary(console=wide, wide=True)
    wide_text = wide.export_text()
    assert "mean" in wide_text and "std" in wide_text


def test_summary_never_squeezes_the_layer_names(monkeypatch, capsys):
    """On an 80-column pipe, ``wide=True`` once squeezed the name columns to nothing; now the
    wide table prints at its full width and the default one keeps each name whole."""
    import io

    from rich.console import Console

    torch.manual_seed(0)
    model = mlp(nn.Sigmoid, 10)
    with Probe(model) as probe:
        _train(model, probe, 3)
    narrow = Console(record=True, width=80, file=io.StringIO())
    probe.summary(console=narrow)
    rows = [line for line in narrow.export_text().splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in rows][:3] == ["0", "1", "2"]
    monkeypatch.setenv("COLUMNS", "80")
    probe.summary(wide=True)
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "layer" in line)
    assert "mean" in header and "std" in header and "update" in header
    assert max(len(line) for line in out.splitlines()) > 80


@pytest.mark.parametrize("bad", ["abc", [1.0], torch.ones(3)])
def test_a_loss_that_is_not_one_number_is_refused_at_once(bad):
    probe = Probe(mlp(nn.ReLU, 2))
    with pytest.raises(ValueError, match="loss must be one number"):
        probe.step(loss=bad)
    probe.step(loss=torch.tensor([2.0]))  # one element: kept
    probe.step(loss=1.5)


def test_a_module_called_in_a_loop_is_said_to_merge_its_calls():
    """A recurrent cell over 8 time steps, and one ReLU shared across 4 blocks at one call site:
    one row each, so the gradient along the loop is not profiled, and the summary says so."""
    from zoo import HandRNN

    class SharedAct(nn.Module):
        def __init__(self):
            super().__init__()
            self.fcs = nn.ModuleList(nn.Linear(64, 64) for _ in range(4))
            self.act, self.out = nn.ReLU(), nn.Linear(64, 10)

        def forward(self, x):
            for fc in self.fcs:
                x = self.act(fc(x))
            return self.out(x)

    for build, calls in ((HandRNN, {"cell.sigmoid": 8, "cell.tanh": 8}), (SharedAct, {"act": 4})):
        torch.manual_seed(0)
        model = build()
        with Probe(model) as probe:
            _train(model, probe, 3, lr=0.1)
        found = [f for f in probe.findings() if f.kind == "blind" and "calls_per_forward" in f.figures]
        assert len(found) == 1 and found[0].figures["calls_per_forward"] == calls, probe.findings()
        assert found[0].severity == "info" and "not profiled" in found[0].message
    torch.manual_seed(0)
    model = mlp(nn.ReLU, 3)
    with Probe(model) as probe:
        _train(model, probe, 3)
    assert not [f for f in probe.findings() if "calls_per_forward" in f.figures]
