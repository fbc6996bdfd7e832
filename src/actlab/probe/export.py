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


def _f(v: float, pct: bool = False, measured: bool = False) -> str:
    """A cell: ``-`` where nothing was measured, ``nan``/``inf`` where the value was one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan" if measured else "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if pct:
        return f"{100 * v:.0f}%" if v == 0 or v >= 0.01 else f"{100 * v:.1f}%"
    a = abs(v)
    return f"{v:.1e}" if (a and (a < 1e-2 or a >= 1e4)) else f"{v:.3g}"


def _trend(first: float, last: float, pct: bool = False, measured: bool = False) -> str:
    """``first→last``, or just the value when it did not change (or was measured once)."""
    a, b = _f(first, pct), _f(last, pct, measured)
    return b if a in (b, "-") else f"{a}→{b}"


# (column, record field, percent, in the default (narrow) view, what it means)
COLUMNS = (
    ("grad", "param_grad_norm", False, True,
     "norm of the layer's parameter gradients (weights + bias), first→last step"),
    ("out grad", "out_grad_norm", False, True, "norm of the loss gradient w.r.t. the layer's output, first→last"),
    ("mean", "mean", False, False, "mean of the activation's output"),
    ("std", "std", False, False, "std of the activation's output"),
    ("sat", "saturated", True, True,
     "share of (sample, unit) with |f'| < tol·max|f'| on a saturating side (ReLU's zeros are not), first→last"),
    ("dead", "dead", True, True, "share of units with f' = 0 on every sample for a whole window, first→last"),
    ("update", "update_ratio", False, True, "||Δw|| / ||w|| over an optimizer step (last measured)"),
)


def summary(data: ProbeRecords, findings: list[Finding], *, print_: bool = True, console: Any = None,
            wide: bool = False):
    """A rich table of each layer (first→last recorded step for the key columns), a legend, then
    the findings.  The default view fits 100 columns; ``wide=True`` adds every column."""
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    recs = data.records
    first: dict[str, LayerRecord] = {}
    last: dict[str, LayerRecord] = {}
    latest: dict[tuple[str, str], float] = {}
    earliest: dict[tuple[str, str], float] = {}
    for r in recs:
        first.setdefault(r.layer, r)
        last[r.layer] = r
        for _, name, *_ in COLUMNS:
            v = getattr(r, name)
            if not (isinstance(v, float) and math.isnan(v)):
                earliest.setdefault((r.layer, name), v)
                latest[(r.layer, name)] = v  # fields measured on fewer steps show their latest
    for r in last.values():  # after a NaN, the measured fields of the last step are NaN: say so
        if r.nonfinite or r.grad_nonfinite:
            for _, name, *_ in COLUMNS:
                if (r.layer, name) in latest and math.isnan(getattr(r, name)):
                    latest[(r.layer, name)] = math.nan
    steps = sorted({r.step for r in recs})
    title = f"actlab probe: {data.settings.model}, " + (
        f"steps {steps[0]}-{steps[-1]} ({len(steps)} recorded)" if steps else "nothing recorded yet")
    cols = [c for c in COLUMNS if wide or c[3]]
    t = Table(title=title, pad_edge=False, padding=(0, 1))
    rows = sorted(last.values(), key=lambda r: r.order)
    # names never shrink to nothing: rich squeezes the widest columns first on a narrow console
    name_w = min(max((len(r.layer) for r in rows), default=5), 22)
    type_w = min(max((len(r.activation or r.module) for r in rows), default=4), 11)
    t.add_column("layer", justify="left", overflow="fold", min_width=name_w, max_width=None if wide else 22)
    t.add_column("type", justify="left", min_width=type_w, max_width=None if wide else 11, overflow="ellipsis")
    for c in cols:
        t.add_column(c[0], justify="right", no_wrap=True)
    for r in rows:
        bad = r.nonfinite or r.grad_nonfinite
        cells = []
        for _, name, pct, _, _ in cols:
            a, b = earliest.get((r.layer, name), math.nan), latest.get((r.layer, name), math.nan)
            seen = (r.layer, name) in latest
            key = name in ("param_grad_norm", "out_grad_norm", "saturated", "dead")
            cells.append(_trend(a, b, pct, seen) if key else _f(b, pct, seen))
        t.add_row(r.layer, r.activation or r.module, *cells, style="red" if bad else None)
    legend = Text("  " + "; ".join(f"{c[0]}: {c[4]}" for c in cols) + "; -: not measured for this layer; "
                  "nan: the value was NaN", style="dim")
    colour = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    lines = [Text(f"[{f.severity}] {f.message}\n  cause: {f.cause}\n  advice: {f.advice}", style=colour.get(f.severity))
             for f in findings]
    if not lines:
        lines = [Text("no findings: nothing looks wrong", style="green") if steps
                 else Text("nothing recorded: no finding means nothing was seen", style="cyan")]
    group = Group(t, legend, *lines)
    if print_:
        if console is None:
            console = Console()
            need = console.measure(t, options=console.options.update_width(1000)).maximum
            if wide and need > console.width:  # --wide means every column at full width, even in a pipe
                console = Console(width=need)
        console.print(group)
    return t
