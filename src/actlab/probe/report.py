"""A self-contained HTML probe report: the findings with their figures, the per-layer table at
the last recorded step, and every per-layer plot over the steps (PNG, inlined as base64)."""

from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from actlab.probe.findings import Finding
from actlab.probe.records import ProbeRecords

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;font-size:.85em}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.f{border-left:4px solid #999;padding:.3em .8em;margin:.6em 0}.error{border-color:#c0392b}
.warning{border-color:#e67e22}.info{border-color:#2980b9}pre{font-size:.8em;white-space:pre-wrap;color:#555}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}"""


def _num(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.3g}"
    return html.escape(str(v))


def _figures(fig: dict) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return html.escape(json.dumps(clean(fig), indent=1, default=str))


def to_html(data: ProbeRecords, findings: list[Finding], path: Any, *, title: str | None = None) -> Path:
    """Write the report to ``path``; returns it.

    Args:
        data: the probe's records (:meth:`Probe.read`).
        findings: its findings (:meth:`Probe.findings`).
        path: the ``.html`` file to write (parent folders are created).
        title: the page heading. Default: the model's class name.
    """
    from actlab.probe.plots import KINDS, plot

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = data.steps()
    head = title or f"actlab probe: {data.settings.model}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(head)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(head)}</h1>",
             f"<p>{len(steps)} recorded steps" + (f" ({steps[0]}-{steps[-1]})" if steps else "")
             + f"; every={data.settings.every}, window={data.settings.window}, "
               f"saturation={data.settings.saturation:g}</p>", "<h2>Findings</h2>"]
    if not findings:
        parts.append("<p>no findings</p>")
    for f in findings:
        parts.append(f"<div class='f {html.escape(f.severity)}'><b>[{html.escape(f.severity)}] "
                     f"{html.escape(f.message)}</b><br>cause: {html.escape(f.cause)}<br>advice: "
                     f"{html.escape(f.advice)}<pre>{_figures(f.figures)}</pre></div>")
    last: dict[str, Any] = {}
    for r in data.records:
        last[r.layer] = r
    cols = ("mean", "std", "saturated", "dead", "out_grad_norm", "param_grad_norm", "update_ratio")
    parts.append("<h2>Layers at the last recorded step</h2><table><tr><th>layer</th><th>type</th>"
                 + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
    for r in sorted(last.values(), key=lambda r: r.order):
        parts.append(f"<tr><td>{html.escape(r.layer)}</td><td>{html.escape(r.activation or r.module)}</td>"
                     + "".join(f"<td>{_num(getattr(r, c, math.nan))}</td>" for c in cols) + "</tr>")
    parts.append("</table><h2>Per layer, over the steps</h2>")
    if data.records:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in KINDS:
                try:
                    png = plot(data, kind, Path(tmp) / f"{kind}.png")
                except ValueError:  # nothing of that kind was measured
                    continue
                b64 = base64.b64encode(png.read_bytes()).decode()
                parts.append(f"<h3>{html.escape(kind)}</h3><img alt='{html.escape(kind)}' "
                             f"src='data:image/png;base64,{b64}'>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
