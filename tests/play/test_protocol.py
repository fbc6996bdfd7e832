"""Messages from the page: anything malformed is refused with one line, before anything runs."""

from __future__ import annotations

import json

import pytest

from actlab.play.config import PlayError
from actlab.play.protocol import MAX_MESSAGE, MESSAGES, parse_message


def test_good_messages() -> None:
    m = parse_message(json.dumps({"type": "configure", "run": "b", "config": {"activation": "relu", "depth": 10}}))
    assert m.type == "configure" and m.run == "b" and m.config is not None and m.config.depth == 10
    assert parse_message('{"type": "step", "n": 25}').args == {"n": 25}
    assert parse_message('{"type": "step"}').args == {"n": 1}
    assert parse_message('{"type": "play"}').run == "a"
    t = parse_message('{"type": "theory", "activation": "tanh", "sigma_w2": 1.5}')
    assert t.args == {"activation": "tanh", "sigma_w2": 1.5, "sigma_b2": 0.0, "depth": 10}


@pytest.mark.parametrize("raw, words", [
    (b"\x80\x04binary", ["binary"]),
    (None, ["binary"]),
    ("x" * (MAX_MESSAGE + 1), ["too long"]),
    ("not json", ["not valid JSON"]),
    ("[1, 2]", ["JSON object", "list"]),
    ('"play"', ["JSON object", "str"]),
    ("{}", ["unknown message type", "configure"]),
    ('{"type": "rm -rf"}', ["'rm -rf'", "play"]),
    ('{"type": "__import__(\'os\')"}', ["unknown message type"]),
    ('{"type": "play", "run": "c"}', ["run", "'c'", "a, b"]),
    ('{"type": "play", "extra": 1}', ["'extra'", "'play'"]),
    ('{"type": "configure"}', ["needs 'config'"]),
    ('{"type": "configure", "config": {"activation": "__import__"}}', ["'__import__'", "relu"]),
    ('{"type": "configure", "config": "depth=10"}', ["object"]),
    ('{"type": "step", "n": 0}', ["n", "[1, 10000]"]),
    ('{"type": "step", "n": 1e9}', ["n", "[1, 10000]"]),
    ('{"type": "step", "n": "5"}', ["n", "number"]),
    ('{"type": "close", "run": "a"}', ["'a' cannot be closed"]),
    ('{"type": "theory", "activation": "tanh", "sigma_w2": -1}', ["sigma_w2", "[0.01, 10]"]),
    ('{"type": "theory", "activation": "tanh", "sigma_w2": NaN}', ["sigma_w2"]),
    ('{"type": "activation", "name": 3}', ["unknown activation", "3"]),
    ("[" * 100_000 + "]" * 100_000, ["too long"]),
    ("[" * 5000 + "]" * 5000, ["JSON"]),
])
def test_malformed_messages_are_refused_with_one_line(raw, words: list[str]) -> None:
    with pytest.raises(PlayError) as e:
        parse_message(raw)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 600
    for w in words:
        assert w in msg


def test_every_type_has_a_parse() -> None:
    required = {"configure": {"config": {}}, "close": {"run": "b"}, "theory": {"activation": "relu", "sigma_w2": 2.0},
                "activation": {"name": "relu"}}
    for kind in MESSAGES:
        assert parse_message(json.dumps({"type": kind, **required.get(kind, {})})).type == kind
