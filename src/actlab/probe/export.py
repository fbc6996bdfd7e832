"""The probe's outputs: a rich summary table, JSON and CSV files (and readers for both), and
TensorBoard scalars when ``tensorboard`` is installed."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from actlab._io import write_atomic
from actlab._json import dumps, jsonable
from actlab.probe.findings import Finding, Thresholds
from actlab.probe.records import LayerRecord, ProbeRecords

FIELDS = [f.name for f in fields(LayerRecord)]
_BOOL = {f.name for f in fields(LayerRecord) if f.type is bool}
_INT = {f.name for f in fields(LayerRecord) if f.type is int}
_STR = {f.name for f in fields(LayerRecord) if f.type is str}


def _clean(v: Any) -> Any:
    """JSON has no NaN/Inf: both become null (the one convention, :mod:`actlab._json`)."""
    return jsonable(v)


def _num(v: Any) -> float:
    if v is None or v == "":
        return math.nan
    if v in ("inf", "-inf"):
        return math.inf if v == "inf" else -math.inf
    return float(v)


def _record(d: dict) -> LayerRecord:
    kw: dict[str, Any] = {}
    for k in FIELDS:
        v = d.get(k)
        if k in _INT:
            kw[k] = int(v)
        elif k in _STR:
            kw[k] = "" if v is None else str(v)
        elif k in _BOOL:
            kw[k] = v in (True, "True", "true", "1", 1)
        else:
            kw[k] = _num(v)
    return LayerRecord(**kw)


def meta(data: ProbeRecords, thresholds: Thresholds) -> dict[str, Any]:
    st = data.settings
    return {
        "model": st.model,
        "every": st.every,
        "window": st.window,
        "saturation": st.saturation,
        "update_every": st.update_every,
        "thresholds": asdict(thresholds),
        "layers": [
            {"name": l.name, "kind": l.kind, "module": l.module, "activation": l.activation, "order": l.order,
             "params": list(l.param_names), "numel": l.numel}
            for l in data.layers
        ],
    }


def document(data: ProbeRecords, findings: list[Finding], thresholds: Thresholds) -> dict[str, Any]:
    """What :func:`to_json` writes: ``{"meta", "records", "findings"}`` as strict JSON data."""
    return {
        "meta": meta(data, thresholds),
        "records": [_clean(asdict(r)) for r in data.records],
        "findings": [_clean(f.to_dict()) for f in findings],
    }


def to_json(data: ProbeRecords, findings: list[Finding], thresholds: Thresholds, path: Any) -> Path:
    return write_atomic(Path(path), dumps(document(data, findings, thresholds), indent=1))


def read_json(path: Any) -> dict[str, Any]:
    """Read :func:`to_json` output: ``{"meta", "records": [LayerRecord], "findings": [Finding]}``."""
    doc = json.loads(Path(path).read_text())
    return {
        "meta": doc.get("meta", {}),
        "records": [_record(r) for r in doc.get("records", [])],
        "findings": [Finding(**f) for f in doc.get("findings", [])],
    }


def to_csv(data: ProbeRecords, path: Any) -> Path:
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(FIELDS)
    for r in data.records:
        w.writerow(["" if isinstance(v, float) and math.isnan(v) else (repr(v) if isinstance(v, float) else v)
                    for v in (getattr(r, k) for k in FIELDS)])
    return write_atomic(path, fh.getvalue())


def read_csv(path: Any) -> list[LayerRecord]:
    """Read :func:`to_csv` output back into records (empty cells are NaN)."""
    with Path(path).open(newline="") as fh:
        return [_record(row) for row in csv.DictReader(fh)]


_SCALARS = [f for f in FIELDS if f not in _BOOL | _INT | _STR]


def to_tensorboard(data: ProbeRecords, findings: list[Finding], logdir: Any) -> Path:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as e:  # tensorboard not installed
        raise ImportError("to_tensorboard needs tensorboard: pip install tensorboard") from e
    logdir = Path(logdir)
    with SummaryWriter(str(logdir)) as w:
        for r in data.records:
            for k in _SCALARS:
                v = getattr(r, k)
                if not math.isnan(v):
                    w.add_scalar(f"{k}/{r.layer}", v, r.step)
        for f in findings:
            w.add_text("findings", str(f))
    return logdir


def _f(v: float, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if pct:
        return f"{100 * v:.1f}%"
    a = abs(v)
    return f"{v:.2e}" if (a and (a < 1e-2 or a >= 1e4)) else f"{v:.3g}"


def summary(data: ProbeRecords, findings: list[Finding], *, print_: bool = True, console: Any = None):
    """A rich table of each layer at its last recorded step, then the findings."""
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    recs = data.records
    last: dict[str, LayerRecord] = {}
    ratio: dict[str, float] = {}
    for r in recs:
        last[r.layer] = r
        if not math.isnan(r.update_ratio):
            ratio[r.layer] = r.update_ratio  # measured on fewer steps: show the latest
    steps = sorted({r.step for r in recs})
    title = f"actlab probe: {data.settings.model}, " + (
        f"steps {steps[0]}-{steps[-1]} ({len(steps)} recorded)" if steps else "nothing recorded yet")
    t = Table(title=title)
    for col in ("layer", "type", "grad norm", "out grad", "mean", "std", "saturated", "dead", "update"):
        t.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for r in sorted(last.values(), key=lambda r: r.order):
        kind = r.activation or r.module
        style = "red" if (r.nonfinite or r.grad_nonfinite) else None
        t.add_row(r.layer, kind, _f(r.param_grad_norm), _f(r.out_grad_norm), _f(r.mean), _f(r.std),
                  _f(r.saturated, True), _f(r.dead, True), _f(ratio.get(r.layer, math.nan)), style=style)
    colour = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    lines = [Text(f"[{f.severity}] {f.message}\n  cause: {f.cause}\n  advice: {f.advice}", style=colour.get(f.severity))
             for f in findings] or [Text("no findings: nothing looks wrong", style="green")]
    group = Group(t, *lines)
    if print_:
        (console or Console()).print(group)
    return t
