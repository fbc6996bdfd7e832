"""The fused CPU pass (numba) against the eager torch kernels, and the statistics deferred to the
end of the forward."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from probe_nets import SeqLSTM, SmallCNN, batches, mlp, train
from torch import nn

from actlab.activations import Activation, specs
from actlab.activations.regions import inactive_units
from actlab.probe import Probe
from actlab.probe import fused
from actlab.probe.stats import TINY, Workspace, plan_for

needs_numba = pytest.mark.skipif(not fused.available(), reason="numba not installed (or ACTLAB_FUSED=0)")

FIELDS = ("mean", "std", "out_rms", "saturated", "inactive", "dead", "out_grad_norm", "param_grad_norm")


def _records(model: nn.Module, fused_: bool, steps: int = 6, **kw):
    m = copy.deepcopy(model)
    torch.manual_seed(1)  # RReLU draws its slopes in training: the same draws for both runs
    with Probe(m, fused=fused_, **kw) as probe:
        train(m, steps=steps, batch=64)
    return probe.records()


def _assert_same(a, b) -> None:
    assert [(r.step, r.layer) for r in a] == [(r.step, r.layer) for r in b]
    for ra, rb in zip(a, b):
        for f in FIELDS:
            x, y = getattr(ra, f), getattr(rb, f)
            if math.isnan(y):
                assert math.isnan(x), (ra.layer, ra.step, f)
            elif f in ("saturated", "inactive", "dead"):
                assert x == y, (ra.layer, ra.step, f, x, y)  # counts: exact
            else:
                assert x == pytest.approx(y, rel=2e-5, abs=1e-9), (ra.layer, ra.step, f)
        assert ra.nonfinite == rb.nonfinite


def _act(spec):
    return lambda: Activation(spec)


ELEMENTWISE = [s for s in specs() if s.elementwise and s.backprop and not s.learnable]


@needs_numba
@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
def test_fused_mlp_records_equal_eager_for_every_activation(spec):
    torch.manual_seed(0)
    model = mlp(_act(spec), depth=3, width=32)
    _assert_same(_records(model, True), _records(model, False))


class ConvNet(nn.Module):
    """Channel-first outputs in 1-D and 2-D convolutions, and a sequence with units last."""

    def __init__(self, act) -> None:
        super().__init__()
        self.c2 = nn.Conv2d(1, 4, 3, padding=1)
        self.a2 = act()
        self.c1 = nn.Conv1d(4, 6, 3, padding=1)
        self.a1 = act()
        self.lin = nn.Linear(6, 5)
        self.a3 = act()
        self.out = nn.Linear(5 * 8, 10)

    def forward(self, x):
        h = self.a2(self.c2(x.view(-1, 1, 8, 8)))  # (N, 4, 8, 8): units are channels
        h = self.a1(self.c1(h.mean(3)))  # (N, 6, 8): units are channels
        h = self.a3(self.lin(h.transpose(1, 2)))  # (N, 8, 5): units last
        return self.out(h.flatten(1))


@needs_numba
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "elu", "hardtanh", "gelu", "silu", "relu6"])
def test_fused_channel_first_and_sequence_layouts_equal_eager(name):
    torch.manual_seed(0)
    spec = next(s for s in specs() if s.name == name)
    model = ConvNet(_act(spec))
    _assert_same(_records(model, True), _records(model, False))


@needs_numba
@pytest.mark.parametrize("make", [SmallCNN, SeqLSTM], ids=["cnn", "lstm"])
def test_fused_on_cnn_and_recurrent_nets_equals_eager(make):
    torch.manual_seed(0)
    model = make()
    _assert_same(_records(model, True), _records(model, False))


@needs_numba
def test_fused_float64_model_equals_eager():
    torch.manual_seed(0)
    model = mlp(nn.Tanh, depth=3, width=32).double()
    a, b = [], []
    for fz, out in ((True, a), (False, b)):
        m = copy.deepcopy(model)
        with Probe(m, fused=fz) as probe:
            opt = torch.optim.SGD(m.parameters(), lr=0.1)
            for x, y in batches(4, 64):
                opt.zero_grad()
                F.cross_entropy(m(x.double()), y).backward()
                opt.step()
        out.extend(probe.records())
    _assert_same(a, b)


@needs_numba
@pytest.mark.parametrize("spec", [s for s in ELEMENTWISE if plan_for(s).sat == "runs"], ids=lambda s: s.name)
def test_fused_counts_equal_eager_at_run_boundaries_and_extremes(spec):
    """Values on and one ulp around every boundary of the saturated runs, zeros, tiny, huge, inf."""
    plan = plan_for(spec)
    pts = [0.0, 1e-45, -1e-45, 1e-30, -1e-30, 3e38, -3e38, math.inf, -math.inf, 1.0, -1.0]
    for r in plan.runs:
        for c in (r.a, r.a + r.b, r.a - r.b):
            if math.isfinite(c):
                t = torch.tensor(c, dtype=torch.float32)
                pts += [t.item(), torch.nextafter(t, torch.tensor(math.inf)).item(),
                        torch.nextafter(t, torch.tensor(-math.inf)).item()]
    x = torch.tensor(pts, dtype=torch.float32).repeat(8, 1)  # 8 samples of every point
    y = spec.forward(x, {**spec.defaults(), "training": False}).contiguous()
    s, ss, sat, amax, amin = fused.act_stats(plan, y, x, plan.unit_counts, (-1, x.shape[1]))
    if plan.unit_counts:
        # exact, also below TINY, where the eager clamp counts subnormals only fractionally
        inside = (y > plan.lo) & (y < plan.count_hi) if plan.dead == "ends" else y > plan.lo
        assert torch.equal(amax, inside.sum(0).to(torch.float32) * TINY)
    if not (plan.unit_counts and plan.counts_saturation):
        assert sat == _count_by_definition(plan, x if plan.domain == "input" else y)
    if not plan.unit_counts:
        if plan.dead in ("max", "both"):
            assert torch.equal(amax, y.amax(0))
        if plan.dead in ("min", "both"):
            assert torch.equal(amin, y.amin(0))
    for got, want, scale in ((s, y.double().sum().item(), y.double().abs().sum().item()),
                             (ss, (y.double() ** 2).sum().item(), (y.double() ** 2).sum().item())):
        if math.isfinite(want):
            assert got == pytest.approx(want, abs=1e-6 * scale), (got, want)
        else:  # inf - inf and NaN as the float32 sum gives them
            assert got == want or (math.isnan(got) and math.isnan(want))


def _count_by_definition(plan, v):
    """The saturated count as :class:`~actlab.probe.stats.Count` defines it, with boolean masks.

    (The eager kernels count values within TINY = 2^-100 of a run's edge only fractionally, so
    they are compared with the derivative elsewhere, away from the edges.)
    """
    total = 0
    for r in plan.runs:
        a = torch.tensor(r.a, dtype=v.dtype)
        b = torch.tensor(r.b, dtype=v.dtype)
        if r.form == "eq":
            total += int((~((v - a) > 0) if r.b > 0 else ~((a - v) > 0)).sum())
        elif r.form == "gt":
            total += int(((v - a) > 0).sum())
        elif r.form == "lt":
            total += int(((a - v) > 0).sum())
        else:
            out = ((v - a).abs() - b) > 0
            total += int((out if r.form == "out" else ~out).sum())
    return float(total)


@needs_numba
@pytest.mark.parametrize("spec", [s for s in ELEMENTWISE if plan_for(s).sat == "runs"], ids=lambda s: s.name)
def test_fused_counts_equal_eager_away_from_run_edges(spec):
    plan = plan_for(spec)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 50, generator=gen) * 4).contiguous()
    y = spec.forward(x, {**spec.defaults(), "training": False}).contiguous()
    s, ss, sat, amax, amin = fused.act_stats(plan, y, x, plan.unit_counts, (-1, 50))
    if plan.unit_counts:
        assert torch.equal(amax, plan.unit_count(y, 0, Workspace()))
    if not (plan.unit_counts and plan.counts_saturation):
        ts, cs, k = plan.saturated_count(x, y, Workspace())
        assert sat == k + sum(c * t.item() for c, t in zip(cs, ts))


@needs_numba
def test_fused_amax_propagates_nan_as_torch_does():
    plan = plan_for(next(s for s in specs() if s.name == "elu"))  # per-unit amax (dead iff amax == -1)
    assert plan.dead == "max" and not plan.unit_counts
    y = torch.tensor([[0.5, -1.0], [float("nan"), -1.0], [0.2, -1.0]])
    s, ss, sat, amax, amin = fused.act_stats(plan, y, None, False, (-1, 2))
    assert math.isnan(s) and math.isnan(sat) and amin is None
    y2 = torch.tensor([[math.inf, -1.0], [-math.inf, 0.5]])  # inf - inf: a NaN sum, but counts stand
    s2, _, sat2, _, _ = fused.act_stats(plan, y2, None, False, (-1, 2))
    assert math.isnan(s2) and sat2 == 2.0  # -1 and -inf are saturated, inf is not
    assert torch.equal(amax.isnan(), y.amax(0).isnan())
    assert amax[1].item() == -1.0  # a unit stuck at -1: dead, as the eager kernels say


@needs_numba
@pytest.mark.parametrize("name", ["relu", "hardtanh", "sigmoid"])
def test_fused_counts_of_a_unit_with_a_nan_equal_eager(name):
    # a NaN output makes the unit's count NaN on both paths: not dead (the non-finite finding
    # tells that story), and the counts-based saturated share is NaN as well
    plan = plan_for(next(s for s in specs() if s.name == name))
    assert plan.unit_counts
    y = torch.tensor([[0.0, 0.5, 0.0], [float("nan"), 0.25, 0.0], [0.0, math.inf, 0.0]])
    _, _, _, fused_counts, _ = fused.act_stats(plan, y, None, True, (-1, 3))
    eager = plan.unit_count(y, 0, Workspace())
    assert torch.equal(fused_counts.isnan(), eager.isnan()) and bool(fused_counts[0].isnan())
    assert plan.dead_mask(fused_counts, None).tolist() == plan.dead_mask(eager, None).tolist()
    finite = ~eager.isnan()
    assert torch.equal(fused_counts[finite], eager[finite])


@needs_numba
def test_fused_unit_at_both_ends_is_inactive():
    # hardtanh: -1 on some samples, +1 on the others, f' = 0 on all: inactive, as regions.inactive_units says
    spec = next(s for s in specs() if s.name == "hardtanh")
    plan = plan_for(spec)
    x = torch.tensor([[-3.0, -3.0, 0.5], [3.0, 0.2, 4.0], [-2.0, 5.0, -5.0]])
    y = spec.forward(x, {**spec.defaults(), "training": False}).contiguous()
    _, _, _, counts, _ = fused.act_stats(plan, y, x, plan.unit_counts, (-1, 3))
    want = inactive_units(spec.derivative(x, y, spec.defaults()).abs())
    assert plan.dead_mask(counts, None).tolist() == want.tolist() == [True, False, False]
    assert plan.dead_mask(plan.unit_count(y, 0, Workspace()), None).tolist() == want.tolist()


@needs_numba
def test_fused_relu_counts_are_tiny_multiples():
    plan = plan_for(next(s for s in specs() if s.name == "relu"))
    y = torch.tensor([[0.0, 1e-45, 2.0], [0.0, 0.0, 3.0]])
    _, _, _, counts, _ = fused.act_stats(plan, y, None, True, (-1, 3))
    assert (counts / TINY).tolist() == [0.0, 1.0, 2.0]


def test_fused_choice_is_validated(monkeypatch):
    with pytest.raises(ValueError, match="fused must be None"):
        Probe(mlp(), fused="yes")
    monkeypatch.setattr(fused, "_kernels", False)  # as if numba were missing
    with pytest.raises(ValueError, match="needs numba"):
        Probe(mlp(), fused=True)
    probe = Probe(mlp())  # None: falls back to the torch kernels
    assert not fused.usable(plan_for(next(s for s in specs() if s.name == "relu")), torch.ones(2, 2), None)
    with probe:
        train(probe.model, steps=2, batch=32)
    assert all(math.isfinite(r.mean) for r in probe.records() if r.kind == "activation")


# ------------------------------------------------------------------ deferred statistics
class InPlaceAfter(nn.Module):
    """GELU whose output is then shifted in place (GELU saves its input, so autograd allows it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 32)
        self.act = nn.GELU()
        self.out = nn.Linear(32, 10)
        self.seen: list[float] = []

    def forward(self, x):
        h = self.act(self.fc(x))
        self.seen.append(h.detach().mean().item())  # what the probe must report
        h.add_(1.0)
        return self.out(h)


@pytest.mark.parametrize("fused_", [None, False])
def test_output_modified_in_place_after_the_activation_is_measured_before(fused_):
    torch.manual_seed(0)
    model = InPlaceAfter()
    with Probe(model, fused=fused_) as probe:
        train(model, steps=4, batch=64)
    recs = [r for r in probe.records() if r.layer == "act"]
    # the first step found the change (its numbers for the layer are dropped); later steps are
    # taken at once, before the in-place shift
    assert [r.step for r in recs if not math.isnan(r.mean)] == [1, 2, 3]
    for r in recs[1:]:
        assert r.mean == pytest.approx(model.seen[r.step], rel=1e-5)


def test_deferred_statistics_keep_no_unneeded_input_alive():
    """A ReLU plan reads only the output: the deferred entry must not hold the layer's input."""
    torch.manual_seed(0)
    model = mlp(nn.ReLU, depth=2, width=16)
    probe = Probe(model).attach()
    held = []
    orig = probe._run_deferred

    def spy():
        held.extend(entry[2] for entry in probe._pend)
        orig()

    probe._run_deferred = spy
    train(model, steps=1, batch=8)
    probe.detach()
    assert held and all(x is None for x in held)


@needs_numba
@pytest.mark.parametrize("shape", [(64, 12), (8, 3, 5, 5), (40,)], ids=["2d", "4d", "1d"])
def test_fused_input_moments_equal_eager(shape):
    # the model's input is summed in one fused pass; the eager form is a sum and a dot
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + 200  # raw pixels: large and uncentred
    means = {}
    for fz in (True, False):
        model = nn.Sequential(nn.Flatten(0 if len(shape) == 1 else 1), nn.LazyLinear(4), nn.ReLU())
        model(x)  # materialise the lazy layer before the probe looks for parameters
        with Probe(model, fused=fz) as probe:
            model(x).sum().backward()
        means[fz] = probe.read().inputs
    (s1, m1, q1), = means[True]
    (s2, m2, q2), = means[False]
    assert s1 == s2 == 0
    assert m1 == pytest.approx(m2, rel=1e-6) and q1 == pytest.approx(q2, rel=1e-6)
    assert m1 == pytest.approx(float(x.double().mean()), rel=1e-6)


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_update_samples_and_sums_equal_the_declared_update_ratio(dtype):
    """The numba snapshot and difference of the update ratio against ``sample`` and ``update_ratio``."""
    from actlab.probe.quantities.update_ratio import sample, update_ratio

    g = torch.Generator().manual_seed(0)
    before = [torch.randn(n, generator=g, dtype=dtype) for n in (1, 17, 4096, 4097, 70001, 256 * 256)]
    after = [b + 1e-3 * torch.randn(b.shape, generator=g, dtype=dtype) for b in before]
    plan = fused.sample_plan(before)
    snap = np.empty(plan[3], fused._NP[dtype])
    fused.take_samples(before, plan, snap)
    assert snap.tolist() == torch.cat([sample(b) for b in before]).tolist()
    out = np.empty(2 * len(before))
    fused.moved(after, plan, snap, out)
    for k, (b, a) in enumerate(zip(before, after)):
        want = float(update_ratio([sample(b)], [sample(a)]))
        assert math.sqrt(out[k] / out[len(before) + k]) == pytest.approx(want, rel=1e-5)


@needs_numba
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "identity", "tanh", "sigmoid", "gelu", "softplus",
                                  "hardtanh", "step"])
def test_fused_many_layers_in_one_call_equal_eager_with_nan_and_a_changing_layout(name):
    """The end-of-forward call over many layers (written straight into the dead-unit buffers)
    against the eager kernels: a NaN reaching some units, then a layer that stops being called
    (the layout changes) and comes back."""
    torch.manual_seed(0)
    spec = next(s for s in specs() if s.name == name)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.a1 = nn.Linear(6, 16), Activation(spec)
            self.l2, self.a2 = nn.Linear(16, 16), Activation(spec)
            self.l3, self.a3 = nn.Linear(16, 8), Activation(spec)
            self.out = nn.Linear(8, 3)
            self.skip = False

        def forward(self, x):
            h = self.a1(self.l1(x))
            if not self.skip:
                h = self.a2(self.l2(h))
            return self.out(self.a3(self.l3(h)))

    model = Net()
    runs = []
    for fz in (True, False):
        m = copy.deepcopy(model)
        torch.manual_seed(1)  # the same batches
        with Probe(m, fused=fz, window=2) as probe:
            opt = torch.optim.SGD(m.parameters(), lr=0.05)
            for step in range(12):
                x = torch.randn(10, 6)
                if step == 3:
                    x[2, 0] = float("nan")  # one sample: NaN in some units of every layer
                m.skip = step in (6, 7)
                opt.zero_grad()
                out = m(x)
                if step != 3 and spec.backprop:  # a NaN step is not trained on
                    F.cross_entropy(out, torch.zeros(10, dtype=torch.long)).backward()
                    opt.step()
        runs.append(probe.records())
    _assert_same(*runs)
    assert any(math.isnan(r.mean) for r in runs[0])  # the NaN step was recorded


@needs_numba
@pytest.mark.parametrize("name", ["relu", "elu", "tanh", "silu"])
def test_fused_many_channel_first_layers_equal_eager_with_nan(name):
    """Convolution outputs (units along the channels) in the one end-of-forward call, a NaN in one image."""
    torch.manual_seed(0)
    spec = next(s for s in specs() if s.name == name)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Activation(spec), nn.Conv2d(4, 6, 3, padding=1),
                          Activation(spec), nn.Flatten(), nn.Linear(6 * 6 * 6, 3))
    runs = []
    for fz in (True, False):
        m = copy.deepcopy(model)
        torch.manual_seed(1)
        with Probe(m, fused=fz, window=2) as probe:
            opt = torch.optim.SGD(m.parameters(), lr=0.05)
            for step in range(6):
                x = torch.randn(5, 1, 6, 6)
                if step == 2:
                    x[1, 0, 2, 3] = float("nan")
                opt.zero_grad()
                out = m(x)
                if step != 2:
                    F.cross_entropy(out, torch.zeros(5, dtype=torch.long)).backward()
                    opt.step()
        runs.append(probe.records())
    _assert_same(*runs)
    assert any(math.isnan(r.mean) for r in runs[0])
