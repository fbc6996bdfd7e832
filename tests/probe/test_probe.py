"""The probe's mechanics: layers found, schedule, statistics against direct computation, the
training numbers left unchanged, bad input, export and plots."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from probe_nets import Encoder, Nested, SeqLSTM, SmallCNN, batches, he_init, mlp, train
from torch import nn

import actlab
from actlab.activations import specs
from actlab.probe import LayerRecord, Probe
from actlab.probe.export import read_csv, read_json
from actlab.probe.quantities.saturated import saturating_side
from actlab.probe.stats import TINY, Workspace, plan_for


def _same(a: LayerRecord, b: LayerRecord) -> bool:
    for k in a.__dataclass_fields__:
        x, y = getattr(a, k), getattr(b, k)
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


# ------------------------------------------------------------------ training unchanged
class WithDropoutAndNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x) + 0.1 * F.silu(x[:, :10])


@pytest.mark.parametrize("every", [1, 3])
def test_losses_bit_identical_with_and_without_probe(every):
    torch.manual_seed(0)
    ref_model = WithDropoutAndNorm()
    state = {k: v.clone() for k, v in ref_model.state_dict().items()}
    torch.manual_seed(1)
    ref = train(ref_model, steps=25, lr=0.1)

    model = WithDropoutAndNorm()
    model.load_state_dict(state)
    torch.manual_seed(1)
    probe = Probe(model, every=every, update_every=2)
    x0, _ = next(batches(1, 32, seed=5))
    probe.born_dead(x0)  # must not move the random state or BatchNorm's statistics
    with probe:
        got = train(model, steps=25, lr=0.1)
    assert got == ref
    assert probe.records()


# ------------------------------------------------------------------ layers and names
def test_finds_module_and_functional_activations_in_nested_containers():
    torch.manual_seed(0)
    model = Nested()
    with Probe(model) as probe:
        train(model, steps=3)
    acts = {l.name: l.activation for l in probe.layers if l.spec is not None}
    assert acts == {"blocks.1.1": "tanh", "blocks.0:relu": "relu", "blocks.0:silu": "silu",
                    "blocks.1.0:relu": "relu", "blocks.1.0:silu": "silu"}
    params = {l.name for l in probe.layers if l.kind == "parametrised"}
    assert params == {"inp", "out", "blocks.0.parts.a", "blocks.0.parts.b", "blocks.1.0.parts.a", "blocks.1.0.parts.b"}
    order = [l.name for l in probe.iter_layers()]
    assert order.index("inp") < order.index("blocks.0:relu") < order.index("blocks.0:silu") < order.index("out")


def test_transformer_functional_gelu_is_attributed_to_the_layer_that_calls_it():
    torch.manual_seed(0)
    model = Encoder()
    with Probe(model) as probe:
        train(model, steps=2)
    gelu = [l for l in probe.layers if l.spec is not None]
    assert [(l.name, l.activation) for l in gelu] == [("layer:gelu", "gelu")]
    recs = [r for r in probe.records() if r.layer == "layer:gelu"]
    assert len(recs) == 2 and all(0 < r.saturated < 0.5 for r in recs)
    names = {l.name for l in probe.layers}
    assert {"layer.norm1", "layer.norm2", "layer.linear1", "layer.self_attn"} <= names


@pytest.mark.parametrize("make", [SmallCNN, SeqLSTM, lambda: SeqLSTM(nn.GRU), lambda: SeqLSTM(nn.RNN)])
def test_records_on_cnn_and_recurrent_nets(make):
    torch.manual_seed(0)
    model = make()
    with Probe(model) as probe:
        train(model, steps=3)
    recs = probe.records()
    assert {r.step for r in recs} == {0, 1, 2}
    rnn = [r for r in recs if r.module in ("LSTM", "GRU", "RNN")]
    if rnn:
        assert all(r.param_grad_norm > 0 for r in rnn)


def test_conv_units_are_channels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 3))
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([-100.0, 0.0, 0.0, 0.0]))  # channel 0 is dead
    with Probe(model, window=1) as probe:
        model(torch.randn(8, 1, 8, 8)).sum().backward()
    r = next(r for r in probe.records() if r.layer == "1")
    assert r.inactive == pytest.approx(0.25) and r.dead == pytest.approx(0.25)


# ------------------------------------------------------------------ statistics
def test_statistics_match_direct_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(64, 16)
    with Probe(model, window=1) as probe:
        out = model(x)
        out.square().sum().backward()
    h1 = torch.tanh(model[0](x))
    h2 = torch.relu(model[2](h1))
    recs = {r.layer: r for r in probe.records()}
    # ReLU's zeros are its zero side (inactive), not saturation: ReLU reads 0 saturated
    for name, h, sat in (("1", h1, (1 - h1 * h1) < 0.05), ("3", h2, torch.zeros_like(h2, dtype=torch.bool))):
        r = recs[name]
        assert r.mean == pytest.approx(h.mean().item(), rel=1e-5, abs=1e-7)
        assert r.std == pytest.approx(h.std(unbiased=False).item(), rel=1e-4)
        assert r.saturated == pytest.approx(sat.float().mean().item(), abs=1e-9)
    dead3 = (h2 == 0).all(0).float().mean().item()
    assert recs["3"].inactive == pytest.approx(dead3)
    for name in ("0", "2", "4"):
        m = model[int(name)]
        want = math.sqrt(m.weight.grad.square().sum().item() + m.bias.grad.square().sum().item())
        assert recs[name].param_grad_norm == pytest.approx(want, rel=1e-5)
    assert probe.param_grad_norms()["0.weight"] == pytest.approx(model[0].weight.grad.norm().item(), rel=1e-5)
    assert list(probe.layer_grad_norms()) == ["0", "2", "4"]


def test_output_gradient_norms_match_autograd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), nn.Linear(16, 2))
    x = torch.randn(32, 8)
    with Probe(model) as probe:
        model(x).square().sum().backward()
    h = torch.sigmoid(model[0](x)).detach().requires_grad_()
    model[2](h).square().sum().backward()
    got = probe.layer_grad_norms(which="output")
    assert got["1"] == pytest.approx(h.grad.norm().item(), rel=1e-5)


def _brute_saturated(spec, x, thr):
    p = {**spec.defaults(), "training": False}
    y = spec.forward(x, p)
    side = saturating_side(spec, x, y, p)
    sat = spec.derivative(x, y, p).abs() < thr
    return (sat if side is None else sat & side).sum().item(), y


@pytest.mark.parametrize("spec", [s for s in specs() if s.elementwise], ids=lambda s: s.name)
def test_saturation_count_matches_the_derivative_for_every_activation(spec):
    plan = plan_for(spec, None, 0.05)
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(4000, generator=gen) * 4, torch.tensor([0.0, -50.0, 50.0, -1e4, 1e4])])
    want, y = _brute_saturated(spec, x, 0.05 * spec.max_abs_derivative)
    if not spec.backprop:
        want = x.numel()  # step and sign: f' = 0 everywhere, every element is saturated
    ts, cs, k = plan.saturated_count(x, y, Workspace())
    got = k + sum(c * t.item() for c, t in zip(cs, ts))
    assert abs(got - want) <= 2, (plan.sat, plan.runs)  # only points within 1e-6 of a boundary may differ


@pytest.mark.parametrize("name, dead_value", [("relu", 0.0), ("tanh", 1.0), ("sigmoid", 0.0), ("hardtanh", -1.0),
                                              ("elu", -1.0)])
def test_dead_units_are_exact(name, dead_value):
    spec = actlab.get(name)
    plan = plan_for(spec, None, 0.05)
    y = spec.forward(torch.randn(32, 5) * 0.5, {**spec.defaults(), "training": False})
    y[:, 2] = dead_value  # unit 2 sits at a zero of f' for every sample
    y[0, 3] = dead_value  # unit 3 only once
    ws = Workspace()
    if plan.unit_counts:
        mask = plan.dead_mask(plan.unit_count(y, 0, ws), None)
    else:
        mask = plan.dead_mask(y.amax(0) if plan.dead in ("max", "both") else None,
                              y.amin(0) if plan.dead in ("min", "both") else None)
    assert mask.tolist() == [False, False, True, False, False]


def test_relu_saturation_is_exact_at_float32_extremes():
    plan = plan_for(actlab.get("relu"))
    y = torch.tensor([[0.0, 1e-45, 1e-38, 3e38], [0.0, 0.0, 5.0, 2.0 ** -100]])
    c = plan.unit_count(y, 0, Workspace())
    assert (c > 0).tolist() == [False, True, True, True]
    # values below TINY = 2^-100 count only fractionally: the documented limit of the float count
    assert round(c.sum().item() / TINY) == 3


# ------------------------------------------------------------------ schedule
def test_every_k_records_only_those_steps_and_window_scales():
    torch.manual_seed(0)
    model = he_init(mlp(nn.ReLU, depth=3))
    with Probe(model, every=5, update_every=10, window=10) as probe:
        train(model, steps=23)
    assert probe.steps() == [0, 5, 10, 15, 20]
    assert probe.read().settings.window_records == 2
    ratios = {r.step for r in probe.records() if not math.isnan(r.update_ratio)}
    assert ratios == {0, 10, 20}  # measured over the optimizer step, read at the next forward


def test_explicit_step_and_eval_forwards():
    torch.manual_seed(0)
    model = mlp(nn.ReLU, depth=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, every=2, auto_step=False) as probe:
        for x, y in batches(6, 32):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            F.cross_entropy(model(x), y).backward()  # gradient accumulation: same step
            opt.step()
            probe.step()
            model.eval()
            with torch.no_grad():
                model(x)  # validation is not a training step
            model.train()
    assert probe.steps() == [0, 2, 4]
    assert probe.current_step == 6


def test_layer_grad_norms_profile_and_accessor():
    torch.manual_seed(0)
    model = mlp(nn.Sigmoid, depth=6)
    with Probe(model) as probe:
        train(model, steps=3)
    g = probe.layer_grad_norms(1)
    assert list(g) == ["0", "2", "4", "6", "8", "10"]
    assert g["0"] < g["10"]
    with pytest.raises(ValueError, match="which must be"):
        probe.layer_grad_norms(which="bias")


# ------------------------------------------------------------------ bad input
def test_model_without_recognised_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="no layer it recognises"):
        Probe(nn.Sequential(nn.Flatten(), nn.Dropout()))
    with pytest.raises(ValueError, match="torch.nn.Module"):
        Probe(lambda x: x)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw, match", [({"every": 0}, "every must be a positive integer"),
                                       ({"every": 1.5}, "every must be a positive integer"),
                                       ({"window": -3}, "window must be a positive integer"),
                                       ({"saturation": 1.5}, "saturation must be"),
                                       ({"update_every": 0}, "update_every must be")])
def test_bad_settings_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        Probe(mlp(), **kw)


def test_window_longer_than_the_run_says_so_and_judges_what_was_recorded():
    torch.manual_seed(0)
    model = he_init(mlp(nn.ReLU, depth=4))
    with torch.no_grad():
        model[2].bias.fill_(-10.0)
    with Probe(model, window=500) as probe:
        train(model, steps=8)
    found = probe.findings()
    blind = [f for f in found if f.kind == "blind"]
    assert blind and "shorter than the dead window (500 steps)" in blind[0].message
    dead = [f for f in found if f.kind == "dead_units"]
    assert dead and dead[0].figures["window_steps"] == 8 and dead[0].figures["short_run"]
    assert "inactive" in dead[0].message and "on all 8 recorded steps" in dead[0].message


def test_plot_and_read_errors():
    probe = Probe(mlp())
    with pytest.raises(ValueError, match="nothing recorded"):
        probe.plot("grad_norm")
    with pytest.raises(ValueError, match="unknown plot kind"):
        probe.plot("histogram")


def test_detach_stops_recording_and_attach_resumes():
    torch.manual_seed(0)
    model = mlp(nn.ReLU, depth=3)
    probe = Probe(model).attach()
    train(model, steps=2)
    probe.detach()
    train(model, steps=2)
    assert probe.steps() == [0, 1]
    probe.attach()
    train(model, steps=1)
    assert probe.steps() == [0, 1, 2]
    probe.detach()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ------------------------------------------------------------------ outputs
@pytest.fixture(scope="module")
def trained_probe():
    torch.manual_seed(0)
    model = mlp(nn.Tanh, depth=4)
    with Probe(model, window=5) as probe, torch.random.fork_rng():
        torch.manual_seed(0)
        train(model, steps=12)
    return probe


def test_json_and_csv_round_trip(trained_probe, tmp_path):
    recs = trained_probe.records()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = read_json(trained_probe.to_json(tmp_path / "p.json"))
    back = read_csv(trained_probe.to_csv(tmp_path / "p.csv"))
    assert len(recs) == len(doc["records"]) == len(back) == 12 * 7
    assert all(_same(a, b) for a, b in zip(recs, doc["records"]))
    assert all(_same(a, b) for a, b in zip(recs, back))
    assert doc["meta"]["every"] == 1 and [l["name"] for l in doc["meta"]["layers"]][:2] == ["0", "1"]


def test_plots_are_pngs(trained_probe, tmp_path):
    for kind in ("grad_norm", "dead_saturated", "activations", "grad_profile"):
        out = trained_probe.plot(kind, out=tmp_path / f"{kind}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    out = trained_probe.plot("grad_profile", out=tmp_path / "g.png", steps=[0, 11], which="output")
    assert out.exists()


def test_summary_table(trained_probe):
    from rich.console import Console

    console = Console(record=True, width=140)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = trained_probe.summary(console=console)
    text = console.export_text()
    assert table.row_count == 7
    assert "tanh" in text and "no findings" in text


def test_probe_is_exported_from_actlab():
    assert actlab.Probe is Probe


def test_output_gradient_norms_follow_their_own_schedule():
    torch.manual_seed(0)
    model = mlp(nn.ReLU, depth=3)
    with Probe(model) as probe:  # default: every recorded step, as parameter-gradient norms
        train(model, steps=3)
    assert {r.step for r in probe.records() if not math.isnan(r.out_grad_norm)} == {0, 1, 2}
    model = mlp(nn.ReLU, depth=3)
    with Probe(model, out_grads_every=10) as probe:
        train(model, steps=12)
    steps = {r.step for r in probe.records() if not math.isnan(r.out_grad_norm)}
    assert steps == {0, 10}
    assert {r.step for r in probe.records() if not math.isnan(r.param_grad_norm)} == set(range(12))


def test_recorded_steps_keep_no_tensor_of_their_own():
    # One small tensor kept per step (a 0-d norm, a view per record) fragmented the heap: the MLP
    # benchmark's process grew ~0.8 MB per step.  The records of a step go into shared buffers, so
    # the tensors alive grow by a few buffers per 64 steps, not by several per step.
    import gc

    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = next(batches(1, 64))

    def run(n: int) -> int:
        for _ in range(n):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        gc.collect()
        return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))

    with Probe(model) as probe:
        before = run(70)
        after = run(200)
    assert len(probe.steps()) == 270  # every step was recorded
    assert after - before < 30, f"{after - before} tensors kept over 200 recorded steps"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64], ids=str)
@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid], ids=lambda a: a.__name__)
def test_a_model_in_another_dtype_trains_unchanged_and_is_recorded(dtype, act):
    # the whole model in that dtype (not autocast): gradients, norms and statistics come in it too
    def run(with_probe: bool):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(16, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 4)).to(dtype)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(64, 16).to(dtype), torch.randint(0, 4, (64,))
        probe = Probe(model).attach() if with_probe else None
        losses = []
        for _ in range(12):
            opt.zero_grad()
            loss = F.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, probe

    plain, _ = run(False)
    probed, probe = run(True)
    assert probed == plain
    rows = [r for r in probe.records() if r.kind == "activation"]
    assert {r.step for r in rows} == set(range(12)) and len({r.layer for r in rows}) == 2
    assert all(math.isfinite(r.mean) and math.isfinite(r.std) and 0 <= r.saturated <= 1 and 0 <= r.inactive <= 1
               for r in rows)
    grads = [r for r in probe.records() if r.kind == "parametrised"]
    assert grads and all(math.isfinite(r.param_grad_norm) and r.param_grad_norm > 0 for r in grads)
    probe.findings()
    probe.detach()


def test_update_ratio_spans_an_optimizer_step_under_gradient_accumulation():
    # four forward/backward per optimizer step: an update ratio is |w after a step - w before|,
    # never the 0 between two micro-batches; with no optimizer step at all it is 0, said late
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 16), torch.randint(0, 4, (64,))
    with Probe(model) as probe:
        for _ in range(30):
            opt.zero_grad()
            for k in range(4):
                (F.cross_entropy(model(x[16 * k:16 * (k + 1)]), y[16 * k:16 * (k + 1)]) / 4).backward()
            opt.step()
    ratios = [r.update_ratio for r in probe.records() if r.kind == "parametrised" and not math.isnan(r.update_ratio)]
    assert len(ratios) >= 10 and all(v > 0 for v in ratios)

    frozen = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
    with Probe(frozen) as probe:
        for _ in range(100):  # backward, never a step
            F.cross_entropy(frozen(x), y).backward()
    ratios = [r.update_ratio for r in probe.records() if r.kind == "parametrised" and not math.isnan(r.update_ratio)]
    assert ratios and all(v == 0 for v in ratios)
