"""What the browser may send over the WebSocket, checked like CLI input before anything runs.

A message is one JSON object (text, at most :data:`MAX_MESSAGE` bytes) with a ``"type"`` from
:data:`MESSAGES` and only that type's keys.  :func:`parse_message` returns a :class:`Message` or
raises :class:`~actlab.play.config.PlayError` with one line naming the bad value and the valid
choices; the server sends that line back and keeps running.  Nothing the browser sends is
evaluated or unpickled: ``json.loads`` and the checks below are all that touch it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from actlab.activations import names as activation_names
from actlab.play.config import PlayConfig, PlayError, parse_config

MAX_MESSAGE = 64 * 1024  # bytes; a full setup is ~400
RUNS = ("a", "b")        # "b" is the second net of a side-by-side comparison
MAX_STEPS = 10_000       # one "step" request

# type -> {key: required?}; "type" itself is implied.
MESSAGES: dict[str, dict[str, bool]] = {
    "configure": {"run": False, "config": True},   # (re)build a run from a setup; it starts paused
    "play": {"run": False},
    "pause": {"run": False},
    "step": {"run": False, "n": False},
    "reset": {"run": False},                       # rebuild the run from its own setup
    "close": {"run": True},                        # end a run (the comparison's "b")
    "theory": {"activation": True, "sigma_w2": True, "sigma_b2": False, "depth": False},
    "activation": {"name": True},                  # f, f' and properties of an activation
    "watch": {},                                   # show the live feed of a user's probe as run "a"
}


@dataclass(frozen=True)
class Message:
    """A checked message: its type, the run it is for, and its arguments."""

    type: str
    run: str = "a"
    config: PlayConfig | None = None
    args: dict[str, Any] = field(default_factory=dict)


def _number(name: str, v: Any, lo: float, hi: float, integer: bool = False) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlayError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}"[:200])
    if integer and isinstance(v, float) and not v.is_integer():
        raise PlayError(f"{name} must be a whole number in [{lo:g}, {hi:g}], got {v!r}")
    if not (math.isfinite(v) and lo <= v <= hi):
        raise PlayError(f"{name} must be in [{lo:g}, {hi:g}], got {v!r}")
    return int(v) if integer else float(v)


def _activation(v: Any) -> str:
    valid = activation_names()
    if not isinstance(v, str) or v not in valid:
        raise PlayError(f"unknown activation {str(v)[:40]!r}; valid: {', '.join(valid)}")
    return v


def parse_message(raw: str | bytes | None) -> Message:
    """Check one WebSocket message; see :data:`MESSAGES` for what each type carries.

    Raises:
        PlayError: not text, too long, not a JSON object, an unknown type or key, or a bad value.
    """
    if not isinstance(raw, str):
        raise PlayError("messages must be JSON text, got binary data")
    if len(raw.encode("utf-8", "replace")) > MAX_MESSAGE:
        raise PlayError(f"message too long ({len(raw)} characters; at most {MAX_MESSAGE} bytes)")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as e:
        raise PlayError(f"message is not valid JSON ({str(e)[:80]})") from None
    if not isinstance(obj, dict):
        raise PlayError(f"message must be a JSON object with a \"type\", got {type(obj).__name__}")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in MESSAGES:
        raise PlayError(f"unknown message type {str(kind)[:40]!r}; valid: {', '.join(MESSAGES)}")
    keys = MESSAGES[kind]
    extra = [k for k in obj if k != "type" and k not in keys]
    if extra:
        valid = ", ".join(keys) or "none"
        raise PlayError(f"unknown key {str(extra[0])[:40]!r} in a {kind!r} message; valid keys: {valid}")
    missing = [k for k, req in keys.items() if req and k not in obj]
    if missing:
        raise PlayError(f"a {kind!r} message needs {missing[0]!r}")
    run = obj.get("run", "a")
    if "run" in keys and run not in RUNS:
        raise PlayError(f"unknown run {str(run)[:20]!r}; valid: {', '.join(RUNS)}")
    if kind == "configure":
        return Message(kind, run, config=parse_config(obj["config"]))
    if kind == "step":
        return Message(kind, run, args={"n": _number("n", obj.get("n", 1), 1, MAX_STEPS, integer=True)})
    if kind == "close" and run == "a":
        raise PlayError("run 'a' cannot be closed; close the comparison run 'b'")
    if kind == "theory":
        return Message(kind, args={
            "activation": _activation(obj["activation"]),
            "sigma_w2": _number("sigma_w2", obj["sigma_w2"], 0.01, 10.0),
            "sigma_b2": _number("sigma_b2", obj.get("sigma_b2", 0.0), 0.0, 5.0),
            "depth": _number("depth", obj.get("depth", 10), 1, 200, integer=True),
        })
    if kind == "activation":
        return Message(kind, args={"name": _activation(obj["name"])})
    return Message(kind, run)


__all__ = ["MAX_MESSAGE", "MAX_STEPS", "MESSAGES", "RUNS", "Message", "parse_message"]
