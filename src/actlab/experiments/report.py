"""The lab's report: one self-contained HTML page (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
from typing import Any, Sequence

from actlab.experiments.base import ExperimentResult

_COLOURS = {
    "confirmed": ("#1b7f3b", "#e3f4e8"),
    "not confirmed": ("#b3261e", "#fbe7e5"),
    "inconclusive": ("#8a6d00", "#fff5d6"),
    "error": ("#5f6368", "#eceff1"),
}

_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
     margin:0;background:#f6f7f9;color:#1f2328;line-height:1.5}
main{max-width:1080px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:28px;margin:0 0 4px} h2{font-size:21px;margin:0 0 6px}
.sub{color:#57606a;margin:0 0 20px}
.card{background:#fff;border:1px solid #d8dee4;border-radius:10px;padding:18px 22px;margin:18px 0}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:13px;font-weight:600;white-space:nowrap}
.claim{font-size:16px;font-style:italic;margin:6px 0 10px}
.label{font-weight:600;color:#57606a;font-size:13px;text-transform:uppercase;letter-spacing:.04em;margin-top:12px}
img{max-width:100%;border:1px solid #eaeef2;border-radius:6px;margin-top:8px}
pre{background:#f6f8fa;border-radius:6px;padding:10px;overflow-x:auto;font-size:12px;max-height:260px}
details summary{cursor:pointer;color:#0969da;font-size:14px;margin-top:10px}
.counts span{margin-right:14px}
a{color:#0969da;text-decoration:none}
.tbl{overflow-x:auto}
tr.fail td{background:#fbe7e5} tr.fail td:first-child{border-left:4px solid #b3261e;font-weight:600}
tr.unclear td:first-child{border-left:4px solid #8a6d00}
tr.pass td:first-child{border-left:4px solid #1b7f3b}
.proxy{display:inline-block;padding:1px 8px;border-radius:6px;background:#eef2ff;color:#3730a3;font-size:12px;
       font-weight:600;margin-left:6px}
.side{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.side>div{background:#f6f8fa;border-radius:6px;padding:8px 12px}
.legend{font-size:13px;color:#57606a}
@media (max-width:600px){
 main{padding:12px 8px 40px} h1{font-size:21px} .card{padding:12px 10px}
 .summary .claimcol{display:none} .side{grid-template-columns:1fr} th,td{padding:5px 6px}
}
"""

_LEGEND = (
    "How to read the numbers: <b>m ± s</b> is the mean ± sample standard deviation over seeds; "
    "<b>(n/k)</b> after it means only n of k seeds gave a finite value (the others diverged or never reached "
    "the target); <b>effect</b> is the difference of means a - b of the clause (in log10 units where it says so) "
    "or the mean itself for a clause on one arm, and <b>CI</b> its two-sided 95% confidence interval. A clause "
    "<i>holds</i> when its CI lies wholly on the claimed side, <i>fails</i> when it lies wholly on the other side, "
    "and is <i>unclear</i> otherwise or when the test is undefined. Sanity checks (identities, definitions) are "
    "shown apart and never decide a verdict."
)


def _badge(status: str) -> str:
    fg, bg = _COLOURS.get(status, _COLOURS["error"])
    return f'<span class="badge" style="color:{fg};background:{bg}">{html.escape(status)}</span>'


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _checks_table(checks: Sequence[Any], title: str) -> str:
    """The clauses of a verdict, one row each, the failing ones highlighted."""
    if not checks:
        return ""
    rows = []
    for c in checks:
        c = c if isinstance(c, dict) else {"description": c.description, "state": c.state, "detail": c.detail,
                                           "effect": c.effect, "ci": c.ci, "test": c.test}
        mark = {"pass": "holds", "fail": "FAILS", "unclear": "unclear"}[c["state"]]
        eff = "" if c.get("effect") is None else f"{c['effect']:.3g}"
        ci = "" if not c.get("ci") else f"[{c['ci'][0]:.3g}, {c['ci'][1]:.3g}]"
        rows.append(f"<tr class='{c['state']}'><td>{html.escape(c['description'])}</td><td>{mark}</td>"
                    f"<td>{html.escape(eff)}</td><td>{html.escape(ci)}</td><td>{html.escape(c.get('test', ''))}</td>"
                    f"<td>{html.escape(c.get('detail', ''))}</td></tr>")
    return (f"<div class='label'>{html.escape(title)}</div><div class='tbl'><table><tr><th>clause</th><th>result</th>"
            "<th>effect</th><th>95% CI</th><th>test</th><th>figures</th></tr>" + "".join(rows) + "</table></div>")


def render_html(results: Sequence[ExperimentResult], meta: dict[str, Any]) -> str:
    """The report page: summary of claims and verdicts, then one section per experiment."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict.status] = counts.get(r.verdict.status, 0) + 1
    summary_rows = "".join(
        f'<tr><td><a href="#{r.name}">{html.escape(r.title)}</a>'
        + ("<span class='proxy'>proxy</span>" if r.proxy else "")
        + f"</td><td class='claimcol'>{html.escape(r.claim)}</td><td>{_badge(r.verdict.status)}</td></tr>"
        for r in results
    )
    meta_line = " · ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in meta.items())
    sections = []
    for r in results:
        fig = (
            f'<img alt="figure for {html.escape(r.name)}" src="data:image/png;base64,'
            f'{base64.b64encode(r.figure_png).decode()}">'
            if r.figure_png
            else ""
        )
        setup = html.escape(json.dumps(r.settings, indent=1, default=str))
        numbers = html.escape(json.dumps(r.to_json()["numbers"], indent=1, default=str))
        err = f"<div class='label'>Error</div><pre>{html.escape(r.error)}</pre>" if r.error else ""
        proxy = (f"<div class='label'>Proxy ({html.escape(r.mode)} mode)</div><div>{html.escape(r.proxy)}</div>"
                 if r.proxy else "")
        side = (f"<div class='side'><div><div class='label'>The source found</div>{html.escape(r.source_found)}"
                f"<div class='legend'>{html.escape(r.source)}</div></div>"
                f"<div><div class='label'>We found</div>{_badge(r.verdict.status)} {html.escape(r.verdict.reason)}"
                f"</div></div>" if r.source_found else
                f"<div class='label'>Verdict</div><div>{html.escape(r.verdict.reason)}</div>")
        sections.append(
            f'<section class="card" id="{r.name}"><h2>{html.escape(r.title)} {_badge(r.verdict.status)}'
            + ("<span class='proxy'>proxy</span>" if r.proxy else "") + "</h2>"
            f'<div class="claim">“{html.escape(r.claim)}”</div>'
            f"<div class='label'>Method</div><div>{html.escape(r.method)}</div>{proxy}{side}"
            f"{_checks_table(r.verdict.checks, 'Decision rule, clause by clause')}"
            f"{_checks_table(r.verdict.sanity, 'Sanity checks (never decide the verdict)')}"
            f"{fig}<div class='tbl'>{_table(r.table)}</div>{err}"
            f"<details><summary>Setup ({r.mode} mode, {r.seconds:.1f} s)</summary><pre>{setup}</pre></details>"
            f"<details><summary>All numbers</summary><pre>{numbers}</pre></details>"
            f"</section>"
        )
    count_html = "".join(f"<span>{_badge(k)} {v}</span>" for k, v in sorted(counts.items()))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>actlab report</title><style>{_CSS}</style></head><body><main>"
        "<h1>actlab: the classic claims about activation functions, measured</h1>"
        f"<p class='sub'>{meta_line}</p>"
        f"<div class='card'><h2>Summary</h2><p class='counts'>{count_html}</p>"
        f"<table class='summary'><tr><th>Experiment</th><th class='claimcol'>Claim</th><th>Verdict</th></tr>"
        f"{summary_rows}</table><p class='legend'>{_LEGEND}</p></div>"
        + "".join(sections)
        + "<p class='sub'>Every verdict above is computed from the measurements in its section by the "
        "experiment's decision rule; numbers are mean ± sample standard deviation over seeds.</p>"
        "</main></body></html>"
    )
