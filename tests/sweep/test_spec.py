"""Sweep specs: parsing (YAML, TOML, flags), the Cartesian product, hashes and clear errors."""

from __future__ import annotations

import pytest

from actlab.activations import names
from actlab.sweep.spec import (
    AXES,
    Config,
    SpecError,
    load_spec,
    parse_spec,
    spec_from_flags,
)

YAML = """
name: demo
axes:
  activation: [relu, Tanh, {name: leaky_relu, negative_slope: 0.2}]
  depth: [1, 2]
  lr: 0.05
  seed: [0, 1]
  steps: 10
record: {every: 5, target_loss: 0.4, metrics: [loss, inactive]}
"""


def test_yaml_product_and_canonical_values(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(YAML)
    spec = load_spec(p)
    cs = spec.configs()
    assert spec.name == "demo" and len(cs) == 3 * 2 * 2
    assert {c.activation for c in cs} == {"relu", "tanh", "leaky_relu"}
    leaky = [c for c in cs if c.activation == "leaky_relu"][0]
    assert dict(leaky.activation_params) == {"negative_slope": 0.2}
    assert all(c.lr == 0.05 and c.steps == 10 for c in cs)
    assert spec.record.every == 5 and spec.record.metrics == ("loss", "inactive")
    assert len({c.hash for c in cs}) == len(cs)


def test_toml_equals_yaml(tmp_path):
    (tmp_path / "a.yaml").write_text(YAML)
    (tmp_path / "a.toml").write_text(
        'name = "demo"\n[axes]\nactivation = ["relu", "tanh", {name = "leaky_relu", negative_slope = 0.2}]\n'
        'depth = [1, 2]\nlr = 0.05\nseed = [0, 1]\nsteps = 10\n'
        '[record]\nevery = 5\ntarget_loss = 0.4\nmetrics = ["loss", "inactive"]\n')
    assert load_spec(tmp_path / "a.yaml").hash == load_spec(tmp_path / "a.toml").hash


def test_hash_is_stable_and_sensitive():
    c = Config(lr=0.1, seed=3)
    assert c.hash == Config(seed=3, lr=0.1).hash == Config.from_dict(c.to_dict()).hash
    assert c.hash != Config(lr=0.1, seed=4).hash
    # defaults filled in: an explicit default hyperparameter hashes like an omitted one
    a = parse_spec({"axes": {"activation": "leaky_relu"}}).configs()[0]
    b = parse_spec({"axes": {"activation": {"name": "leaky_relu", "negative_slope": 0.01}}}).configs()[0]
    assert a.hash == b.hash


def test_flags():
    spec = spec_from_flags(activation="relu,tanh", lr="0.1,0.01", depth="2", steps=5)
    cs = spec.configs()
    assert len(cs) == 4 and {c.lr for c in cs} == {0.1, 0.01} and all(c.depth == 2 for c in cs)


@pytest.mark.parametrize(
    "axes, needles",
    [
        ({"activation": ["relu", "relux"]}, ["activation", "relux", *names()[:3]]),
        ({"width": -3}, ["width", "-3", "[1, 16384]"]),
        ({"widht": 3}, ["widht", *AXES]),
        ({"optimiser": "lbfgs"}, ["optimiser", "lbfgs", "sgd", "momentum", "adam"]),
        ({"init": "magic"}, ["init", "magic", "he", "xavier"]),
        ({"lr": 0}, ["lr", "> 0"]),
        ({"depth": 1.5}, ["depth", "1.5"]),
        ({"data": "imagenet"}, ["data", "imagenet", "digits"]),
        ({"activation": {"name": "leaky_relu", "negative_slope": 2}}, ["negative_slope", "[0, 1)"]),
        ({"activation": {"name": "elu", "beta": 1}}, ["beta", "alpha"]),
    ],
)
def test_bad_spec_names_field_and_valid_values(axes, needles):
    with pytest.raises(SpecError) as e:
        parse_spec({"axes": axes})
    msg = str(e.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_bad_top_level_and_record_fields(tmp_path):
    with pytest.raises(SpecError, match="unknown top-level field 'axis'.*axes"):
        parse_spec({"axis": {}})
    with pytest.raises(SpecError, match="record: unknown field 'evry'.*every"):
        parse_spec({"axes": {}, "record": {"evry": 3}})
    with pytest.raises(SpecError, match="record.metrics.*inactive"):
        parse_spec({"axes": {}, "record": {"metrics": ["accuracy"]}})
    p = tmp_path / "s.yaml"
    p.write_text("axes: [unclosed")
    with pytest.raises(SpecError, match="does not parse"):
        load_spec(p)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")


def test_safe_load_executes_nothing(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("axes: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="does not parse"):
        load_spec(p)


def test_learnable_activation_is_accepted_with_its_initial_value():
    spec = parse_spec({"axes": {"activation": [{"name": "prelu", "negative_slope": 0.1}, "prelu"]}})
    assert [c.activation_params["negative_slope"] for c in spec.configs()] == [0.1, 0.25]


def test_config_carries_the_batch_semantics_and_round_trips():
    from actlab.sweep.spec import BATCHES, Config

    c = Config(activation="tanh", lr=0.05, optimiser="adam", momentum=0.8, batch_size=16, steps=7, seed=3)
    assert c.to_dict()["batches"] == BATCHES == "epoch"  # in the hash: old with-replacement results differ
    assert Config.from_dict(c.to_dict()) == c
    t = c.train_config()
    assert (t.loss, t.optimiser, t.lr, t.betas[0], t.batch_size, t.steps, t.seed) == ("ce", "adam", 0.05, 0.8, 16, 7, 3)
