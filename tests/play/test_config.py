"""The playground's controls: every value from the browser or a link is checked like CLI input."""

from __future__ import annotations

import pytest

from actlab.activations import names
from actlab.lab.init import INIT_SCHEMES
from actlab.play.config import PlayConfig, PlayError, describe_fields, parse_config, parse_query


def test_defaults_parse_to_themselves() -> None:
    assert parse_config({}) == PlayConfig()
    assert parse_config(PlayConfig(activation="relu", depth=10).to_dict()) == PlayConfig(activation="relu", depth=10)


def test_choices_come_from_the_registries() -> None:
    f = describe_fields()
    assert f["activation"]["choices"] == list(names())
    assert f["init"]["choices"] == list(INIT_SCHEMES)
    assert {"circles", "xor", "gaussians", "spirals", "digits"} <= set(f["data"]["choices"])


@pytest.mark.parametrize("raw, words", [
    ({"activation": "sigmod"}, ["'sigmod'", "sigmoid", "relu"]),
    ({"init": "he"}, ["'he'", "he_normal", "critical", "torch_default"]),
    ({"depth": 0}, ["depth", "[1, 20]", "0"]),
    ({"depth": 2.5}, ["depth", "whole number"]),
    ({"depth": "10"}, ["depth", "number", "'10'"]),
    ({"lr": True}, ["lr", "number", "True"]),
    ({"lr": float("nan")}, ["lr", "nan"]),
    ({"lr": None}, ["lr", "null"]),
    ({"bogus": 1}, ["'bogus'", "activation", "seed"]),
    ({"sigma_w2": 100.0}, ["sigma_w2", "[0.01, 10]"]),
])
def test_bad_values_are_named_with_the_valid_ones(raw: dict, words: list[str]) -> None:
    with pytest.raises(PlayError) as e:
        parse_config(raw)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_not_a_mapping_is_rejected() -> None:
    with pytest.raises(PlayError, match="object"):
        parse_config([1, 2])


def test_optional_controls_take_null_and_noise_is_for_plane_sets_only() -> None:
    c = parse_config({"sigma_w2": None, "noise": 0.3})
    assert c.sigma_w2 is None and c.noise == 0.3
    assert parse_config({"data": "digits", "noise": 0.3}).noise is None


def test_a_link_restores_both_runs_and_b_shares_a_s_data() -> None:
    a, b = parse_query("?activation=sigmoid&depth=10&lr=0.1&sigma_w2=null&b.activation=relu&b.init=he_normal&b.seed=5")
    assert (a.activation, a.depth, a.lr, a.sigma_w2) == ("sigmoid", 10, 0.1, None)
    assert b is not None and (b.activation, b.init, b.depth) == ("relu", "he_normal", 10)
    assert b.seed == a.seed == 0  # data and seed are shared: a comparison is on one data set
    assert parse_query("depth=3")[1] is None
    assert parse_query("compare=1")[1] == PlayConfig()


@pytest.mark.parametrize("query, words", [("depth=ten", ["depth", "'ten'"]), ("b.nope=1", ["'b.nope'"]),
                                          ("activation=relux", ["'relux'", "relu"])])
def test_bad_links_are_named(query: str, words: list[str]) -> None:
    with pytest.raises(PlayError) as e:
        parse_query(query)
    for w in words:
        assert w in str(e.value)
