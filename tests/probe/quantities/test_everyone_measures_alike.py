"""One vocabulary: the probe, the lab (``layer_gradients``, ``lab.compare.measure_gradients``) and
the sweep engine measure each shared quantity on the same model and batch and get the same
numbers, quantity by quantity, layer by layer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from actlab.lab.compare import layer_gradients, measure_gradients
from actlab.probe import Probe
from actlab.probe.quantities import SATURATION_TOL
from actlab.probe.quantities.inactive import inactive_share
from actlab.probe.quantities.saturated import saturated_share, saturating_side
from actlab.lab.train import EpochBatches
from actlab.sweep.engine import init_params, lab_model, load_data, train_group
from actlab.sweep.spec import Config, Record

F64 = torch.float64
# Two models in one engine group (different activations share the stack); biases and scales
# chosen so that some units are inactive and some (sample, unit) saturated on the batch: the
# comparisons below are of numbers that are neither all 0 nor all 1.
CONFIGS = [
    Config(activation="relu", depth=3, width=24, bias_init=-0.6, steps=1, batch_size=24, seed=3),
    Config(activation="tanh", depth=3, width=24, init="normal", init_args={"std": 0.6}, bias_init=0.0,
           steps=1, batch_size=24, seed=4),
    # saturated only above 6 (its x < 0 is ReLU's zero side): large weights put units on both sides,
    # and at this scale some unit has every sample at 0 or 6 without being constant: inactive for
    # all four (f' = 0 on every sample; the probe counts no output strictly inside (0, 6)).
    Config(activation="relu6", depth=3, width=24, init="normal", init_args={"std": 1.0}, bias_init=0.0,
           steps=1, batch_size=24, seed=5),
]


@pytest.fixture(scope="module")
def engine():
    return train_group(CONFIGS, Record(every=1, metrics=("loss", "param_grad_norm", "weight_grad_norm", "inactive",
                                                        "saturated")),
                       dtype=F64, threads=1)


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=[c.activation for c in CONFIGS])
def test_probe_lab_compare_and_engine_agree(engine, i):
    cfg = CONFIGS[i]
    data = load_data(cfg.data, cfg.preprocess, cfg.n, F64)
    tc = cfg.train_config()
    idx = EpochBatches(data.n_train, tc.batch_size, tc.seed).take(1)[0]  # the engine's step-0 batch
    x, y = data.x_train[idx], data.y_train[idx]
    params = init_params(cfg, data.in_features, data.n_classes, F64)
    rows = {r["layer"]: r for r in engine[i].layers if r["step"] == 0}

    # the probe, on the lab's MLP with the engine's initial weights
    model = lab_model(cfg, data.in_features, data.n_classes, params, dtype=F64).train()
    with Probe(model, param_outputs=True) as probe:
        F.cross_entropy(model(x), y).backward()
    recs = probe.records()
    linears = [r for r in recs if r.kind == "parametrised"]
    acts = [r for r in recs if r.kind == "activation"]
    assert len(linears) == cfg.depth + 1 and len(acts) == cfg.depth

    # the lab: one forward/backward, gradients and derivatives
    lab = layer_gradients(lab_model(cfg, data.in_features, data.n_classes, params, dtype=F64), x, y)
    # lab.compare: pre-activation gradient and weight gradient from the output gradient
    seq = lab_model(cfg, data.in_features, data.n_classes, params, dtype=F64)
    logits = seq(x).detach()
    out_grad = (torch.softmax(logits, -1) - F.one_hot(y, data.n_classes).to(F64)) / len(y)
    pre, wg = measure_gradients(seq.net, x, out_grad)

    spread = {"inactive": set(), "saturated": set()}
    for l, rec in enumerate(linears):
        g, w = rec.param_grad_norm, rec.weight_grad_norm
        assert rows[l]["param_grad_norm"] == pytest.approx(g, rel=1e-9)
        assert lab.param_grad_norms[l] == pytest.approx(g, rel=1e-9)
        assert rows[l]["weight_grad_norm"] == pytest.approx(w, rel=1e-9)
        assert lab.weight_grad_norms[l] == pytest.approx(w, rel=1e-9)
        # the weights alone, computed from the gradient tensor itself
        assert float(model.linear_layers()[l].weight.grad.norm()) == pytest.approx(w, rel=1e-9)
        # informative: the bias gradient is not 0, so the two quantities differ
        assert w < g * (1 - 1e-6)
        if l < cfg.depth:
            assert wg[l] == pytest.approx(w, rel=1e-9)
            assert pre[l] * math.sqrt(len(y)) == pytest.approx(rec.out_grad_norm, rel=1e-9)
    for l, rec in enumerate(acts):
        d = lab.derivative[l].abs()
        spec = model.activations()[l].spec
        side = saturating_side(spec, lab.pre[l], None)
        for name, mine in (("inactive", inactive_share(d)),
                           ("saturated", saturated_share(d, spec.max_abs_derivative, SATURATION_TOL, side=side))):
            assert rows[l][name] == pytest.approx(getattr(rec, name), abs=1e-12), (name, l)
            assert float(mine) == pytest.approx(getattr(rec, name), abs=1e-12), (name, l)
            spread[name].add(getattr(rec, name))
    # the numbers compared are informative: not every layer at 0 (ReLU does not saturate)
    if cfg.activation == "relu":
        assert spread["saturated"] == {0.0}
    else:
        assert any(v > 0 for v in spread["saturated"])
    if cfg.activation in ("relu", "relu6"):
        assert any(0 < v < 1 for v in spread["inactive"])
    if cfg.activation == "relu6":  # the x < 0 side is not counted: far fewer saturated than f' = 0
        zero = [float((lab.derivative[l] == 0).double().mean()) for l in range(cfg.depth)]
        assert all(getattr(r, "saturated") < z for r, z in zip(acts, zero))
