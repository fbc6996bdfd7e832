"""Each quantity's plain reduction against what the probe records on the same model and batch,
the records built from the quantities, and the new identical-units quantity."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch
from torch import nn

from actlab.activations import get
from actlab.probe import LayerRecord, Probe
from actlab.probe.findings import detect
from actlab.probe.quantities import QUANTITIES, SATURATION_TOL, derivative, module_derivative
from actlab.probe.quantities.dead import dead_on_data, dead_units, streaks
from actlab.probe.quantities.identical_units import identical_units
from actlab.probe.quantities.inactive import inactive_share, inactive_units
from actlab.probe.quantities.moments import moments
from actlab.probe.quantities.nonfinite import first_nonfinite, nonfinite
from actlab.probe.quantities.out_grad_norm import output_grad_norm
from actlab.probe.quantities.param_grad_norm import param_grad_norm, param_grad_rms
from actlab.probe.quantities.saturated import saturated_share, saturating_side
from actlab.probe.quantities.update_ratio import UPDATE_SAMPLE, sample, update_ratio
from actlab.probe.quantities.weight_grad_norm import is_weight, weight_grad_norm


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 24), nn.Tanh(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 3))
    with torch.no_grad():
        model[2].bias.sub_(0.4)  # some ReLU units inactive on the batch
    return model


def test_probe_records_equal_the_declared_reductions():
    model = _net()
    x = torch.randn(40, 12)
    z1 = model[0](x)
    h1 = torch.tanh(z1)
    z2 = model[2](h1)
    h2 = torch.relu(z2)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, update_every=1, param_outputs=True) as probe:
        model(x).square().mean().backward()
        opt.step()
        model(x)  # the update ratio is read at the next forward
    r = {rec.layer: rec for rec in probe.records() if rec.step == 0}
    for name, z, h in (("1", z1, h1), ("3", z2, h2)):
        spec = get({"1": "tanh", "3": "relu"}[name])
        d = derivative(spec, z.detach()).abs()
        mean, std, rms = moments(h)
        assert r[name].mean == pytest.approx(float(mean), rel=1e-5, abs=1e-7)
        assert r[name].std == pytest.approx(float(std), rel=1e-5)
        assert r[name].out_rms == pytest.approx(float(rms), rel=1e-5)
        side = saturating_side(spec, z.detach(), None)
        assert r[name].saturated == pytest.approx(float(saturated_share(d, spec.max_abs_derivative, side=side)),
                                                  abs=1e-6)
        assert r[name].inactive == pytest.approx(float(inactive_share(d)), abs=1e-6)
        assert r[name].nonfinite is bool(nonfinite(h))
    assert 0 < r["3"].inactive < 1  # the check above compared something
    # gradients: weights and bias together; the update over the SGD step
    for i in ("0", "2", "4"):
        lin = model[int(i)]
        assert r[i].param_grad_norm == pytest.approx(float(param_grad_norm(lin.weight.grad, lin.bias.grad)), rel=1e-6)
        assert r[i].param_grad_rms == pytest.approx(float(param_grad_rms(lin.weight.grad, lin.bias.grad)), rel=1e-6)
        # the weights alone (what mean-field theory predicts), less than weights and bias together
        assert r[i].weight_grad_norm == pytest.approx(float(weight_grad_norm(lin.weight.grad)), rel=1e-6)
        assert r[i].weight_grad_norm < r[i].param_grad_norm
        after = [lin.weight, lin.bias]
        pb = before[int(i): int(i) + 2]  # parameters in order: 0.weight, 0.bias, 2.weight, ...
        assert r[i].update_ratio == pytest.approx(float(update_ratio(pb, after)), rel=1e-5)
    # output gradient of the tanh layer
    model2 = _net()
    xx = x.clone()
    hh = torch.tanh(model2[0](xx)).detach().requires_grad_()
    model2[4](torch.relu(model2[2](hh))).square().mean().backward()
    assert r["1"].out_grad_norm == pytest.approx(float(output_grad_norm(hh.grad)), rel=1e-5)
    assert r["0"].identical_units == 0.0


def test_dead_over_a_window_equals_dead_units_of_the_inactive_history():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    with torch.no_grad():
        model[0].bias.copy_(torch.linspace(-3, 1, 32))
    history = []
    with Probe(model, window=3) as probe:
        for _ in range(6):
            x = torch.randn(16, 6)
            z = model[0](x)
            history.append(inactive_units(derivative(get("relu"), z.detach()).abs()))
            model(x).sum().backward()
    H = torch.stack(history)
    recs = [rec for rec in probe.records() if rec.layer == "1"]
    for k, rec in enumerate(recs):
        assert rec.dead == pytest.approx(float(dead_units(H[: k + 1], 3).double().mean()))
    assert recs[-1].dead > 0  # some units stayed inactive (the check compared something)
    s = probe.read().streaks["1"]
    assert s.tolist() == streaks(H).tolist()
    assert dead_on_data(list(H)).tolist() == H.all(0).tolist()


def test_identical_units_reveals_a_constant_initialised_layer():
    w = torch.randn(8, 5)
    assert float(identical_units(w)) == 0.0
    w[3] = w[1]
    w[6] = w[1]
    assert float(identical_units(w)) == pytest.approx(3 / 8)
    b = torch.zeros(8)
    b[6] = 1.0  # a different bias makes unit 6 a different function
    assert float(identical_units(w, b)) == pytest.approx(2 / 8)
    assert float(identical_units(torch.zeros(8, 5), torch.zeros(8))) == 1.0
    assert identical_units(torch.zeros(5)) is None
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    nn.init.constant_(model[0].weight, 0.1)
    nn.init.zeros_(model[0].bias)
    with Probe(model) as probe:
        model(torch.randn(8, 4)).sum().backward()
    got = {r.layer: r.identical_units for r in probe.records()}
    assert got["0"] == 1.0 and got["2"] == 0.0 and math.isnan(got["1"])


def _identical_units_oracle(w, b=None) -> float:
    """Every pair of rows compared, value by value (NaN equals nothing, -0.0 equals 0.0)."""
    eq = (w[:, None, :] == w[None, :, :]).all(-1)
    if b is not None:
        eq &= b[:, None] == b[None, :]
    eq.fill_diagonal_(False)
    return eq.any(1).double().mean().item()


def _weights_with_duplicates(seed: int):
    g = torch.Generator().manual_seed(seed)
    n, d = [(8, 5), (64, 3), (256, 256), (3, 1), (40, 7)][seed % 5]
    kind = seed % 4
    w = torch.randn(n, d, generator=g)
    if kind == 0:  # many equal first weights, rows different further on
        w[:, 0] = torch.randint(0, 3, (n,), generator=g).float()
    elif kind == 1:  # classes of equal rows
        w = w[torch.randint(0, max(2, n // 4), (n,), generator=g)]
    elif kind == 2:  # a constant layer, with -0.0 against 0.0 in one row
        w = torch.zeros(n, d)
        w[0, -1] = -0.0
    else:  # duplicates, one of them with a NaN
        w[1::3] = w[0]
        w[min(4, n - 1), -1] = float("nan")
    b = None
    if seed % 3:
        b = torch.randint(0, 2, (n,), generator=g).to(w.dtype)
    if seed % 7 == 0:
        w, b = w.double(), (None if b is None else b.double())
    return w, b


@pytest.mark.skipif(not __import__("actlab.probe.quantities._rows", fromlist=["x"]).available(),
                    reason="numba not installed (or ACTLAB_FUSED=0)")
@pytest.mark.parametrize("seed", range(28))
def test_identical_units_numba_path_equals_every_pair_compared(seed):
    w, b = _weights_with_duplicates(seed)
    assert float(identical_units(w, b)) == _identical_units_oracle(w, b)
    assert float(identical_units(w.t().contiguous().t(), b)) == _identical_units_oracle(w, b)  # a strided weight


def test_records_have_the_fields_of_every_quantity_once():
    names = [f.name for f in fields(LayerRecord)]
    declared = [f.name for q in QUANTITIES for f in q.fields]
    assert len(set(declared)) == len(declared)
    assert names[-len(declared):] == declared
    assert {q.key for q in QUANTITIES} >= {"activations", "saturated", "inactive", "dead", "out_grad_norm",
                                           "grad_norm", "weight_grad_norm", "update_ratio", "nonfinite",
                                           "identical_units"}
    assert SATURATION_TOL == Probe(nn.Linear(2, 2)).saturation


def test_findings_read_records_only():
    model = _net()
    with Probe(model, window=2) as probe:
        for _ in range(3):
            model(torch.randn(8, 12)).sum().backward()
    data = probe.read()
    assert [f.to_dict() for f in detect(data, probe.thresholds)] == [f.to_dict() for f in probe.findings()]
    assert first_nonfinite(data.records) is None


def test_generic_quantities_can_be_chosen_and_bad_keys_are_named():
    model = _net()
    with Probe(model, quantities=()) as probe:
        model(torch.randn(4, 12)).sum().backward()
    assert all(math.isnan(r.identical_units) for r in probe.records())
    with pytest.raises(ValueError, match="unknown quantity 'nope'.*identical_units"):
        Probe(model, quantities=["nope"])


def test_module_derivative_uses_a_learned_prelu_slope_and_names_a_non_activation():
    z = torch.tensor([[-2.0, -1.0, 0.5, 1.0, 3.0]])
    assert module_derivative(nn.PReLU(5, init=0.2), z)[0].tolist() == pytest.approx([0.2, 0.2, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="Linear is not an activation"):
        module_derivative(nn.Linear(2, 2), z)


def test_every_quantity_with_a_plot_is_a_plot_kind(tmp_path):
    from actlab.probe.plots import KINDS

    assert {q.key for q in QUANTITIES if q.plot is not None} <= set(KINDS)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Probe(model, update_every=1, window=2) as probe:
        for _ in range(4):
            opt.zero_grad()
            model(torch.randn(8, 12)).square().mean().backward()
            opt.step()
    for kind in KINDS:
        out = probe.plot(kind, out=tmp_path / f"{kind}.png")
        assert out.stat().st_size > 1000, kind


def test_weight_grad_norm_takes_weights_only_and_a_layer_without_weights_records_nan():
    w, b = torch.randn(4, 3), torch.randn(4)
    assert is_weight(w) and not is_weight(b)
    assert is_weight(torch.randn(2, 4, 3), model_dims=1) and not is_weight(torch.randn(2, 4), model_dims=1)
    assert float(weight_grad_norm(w)) == pytest.approx(float(w.norm()))
    assert float(weight_grad_norm(w, None, w)) == pytest.approx(float(w.norm()) * math.sqrt(2))
    # the engine's stacked models: one norm per model
    assert weight_grad_norm(torch.stack([w, 2 * w]), model_dims=1).tolist() == pytest.approx(
        [float(w.norm()), 2 * float(w.norm())])
    with pytest.raises(ValueError, match=r"weight gradients.*shape \(4,\).*param_grad_norm"):
        weight_grad_norm(w, b)
    with pytest.raises(ValueError, match="none"):
        weight_grad_norm(None)
    # a layer norm has parameters but no weight matrix: its weight_grad_norm is not measured (NaN)
    model = nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.Linear(6, 2))
    with Probe(model) as probe:
        model(torch.randn(7, 5)).sum().backward()
    got = {r.layer: r for r in probe.records()}
    assert math.isnan(got["1"].weight_grad_norm) and got["1"].param_grad_norm > 0
    assert got["2"].weight_grad_norm == pytest.approx(float(model[2].weight.grad.norm()), rel=1e-6)
    assert probe.layer_grad_norms(which="weights") == pytest.approx(
        {"0": float(model[0].weight.grad.norm()), "2": float(model[2].weight.grad.norm())}, rel=1e-6)


def test_update_sample_spreads_over_the_columns_of_a_first_layer():
    # An image's border pixels are always 0, so the weights that read them never move: a sample
    # made of those columns alone would call a moving layer still.
    torch.manual_seed(0)
    w = torch.randn(256, 784)
    step = torch.randn(256, 784) * 1e-3
    step[:, :16] = 0
    before = sample(w)
    assert before.numel() == UPDATE_SAMPLE
    estimate = float((sample(w + step) - before).norm() / before.norm())
    assert estimate == pytest.approx(float(step.norm() / w.norm()), rel=0.1)
    small = torch.randn(3, 100)
    assert torch.equal(sample(small), small.reshape(-1))
