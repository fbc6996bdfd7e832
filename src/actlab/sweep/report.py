"""Sweep report: heatmaps of final loss, steps to target and dead fraction, and a table.

Rows of every heatmap are the activations (with their hyperparameters); columns are each
other axis that takes more than one value in the sweep (depth, learning rate, width, ...).
A cell is the mean over the remaining axes (seeds, ...); cells whose models all diverged are
grey and marked ``div``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actlab._io import write_atomic
from actlab._json import dumps
from actlab.plot.style import save
from actlab.sweep.spec import AXES
from actlab.sweep.store import Store

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

HEATMAP_METRICS = {
    "train_loss": ("final training loss", "viridis_r"),
    "steps_to_batch_loss": ("steps to a batch loss <= the target loss", "magma_r"),
    "inactive": ("inactive-unit share on the last recorded batch", "Reds"),
    "test_error": ("test error", "viridis_r"),
}
COLUMN_AXES = ("depth", "lr", "width", "init", "bias_init", "optimiser", "batch_size", "data", "preprocess",
               "steps", "momentum")
"""Axes tried, in this order, as heatmap columns (those with more than one value)."""


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds) of the final metrics per configuration without its seed."""
    keys = ["label", *[a for a in AXES if a not in ("activation", "seed") and df[a].nunique(dropna=False) > 1]]
    g = df.groupby(keys, dropna=False, sort=True)
    out = g.agg(
        runs=("config_hash", "size"),
        diverged=("diverged", lambda s: int(s.fillna(False).astype(bool).sum())),
        train_loss=("train_loss", "mean"),
        train_loss_std=("train_loss", "std"),
        test_error=("test_error", "mean"),
        test_error_std=("test_error", "std"),
        steps_to_batch_loss=("steps_to_batch_loss", "mean"),
        reached_batch_loss=("steps_to_batch_loss", lambda s: int(s.notna().sum())),
        inactive=("inactive", "mean"),
        saturated=("saturated", "mean"),
    ).reset_index()
    return out.sort_values(["test_error"], ascending=True, na_position="last").reset_index(drop=True)


# The summary table on a terminal: (header, row key, key of its std over seeds or None).  The
# "runs" cell also counts the runs that diverged ("4 (1 div)").
NARROW_COLUMNS = (
    ("runs", "runs", None),
    ("test error", "test_error", "test_error_std"),
    ("train loss", "train_loss", None),
    ("inactive", "inactive", None),
)
"""The default view: the headline metrics, so the table fits 80 columns."""
WIDE_COLUMNS = (
    ("runs", "runs", None),
    ("test error", "test_error", "test_error_std"),
    ("train loss", "train_loss", "train_loss_std"),
    ("steps to target", "steps_to_target", None),
    ("reached", "reached_target", None),
    ("inactive", "inactive", None),
    ("saturated", "saturated", None),
)
"""``--wide``: every column of table.md."""


def terminal_table(summary: dict[str, Any], *, wide: bool = False) -> Any:
    """The summary table (``make_report(...)``'s ``table``) as a rich table for a terminal.

    The default view keeps the label, the varied axes, the runs (and how many diverged), test
    error (mean ± std over seeds), training loss and the inactive share (``NARROW_COLUMNS``), so
    it fits 80 columns; ``wide=True`` shows every column of table.md (``WIDE_COLUMNS``).  The
    caption says what the narrow view leaves out.
    """
    from rich import box
    from rich.table import Table

    from actlab._format import number

    def cell(r: dict[str, Any], key: str, std: str | None) -> str:
        if key == "runs":
            return f"{r['runs']}" + (f" ({r['diverged']} div)" if r.get("diverged") else "")
        text = number(r.get(key), 4 if wide else 3, sci=True)
        return text + (f"±{number(r[std], 2, sci=True)}" if std and r.get(std) is not None else "")

    rows = summary["table"]
    axes = summary["table_axes"]
    cols = WIDE_COLUMNS if wide else NARROW_COLUMNS
    t = Table(title=f"{len(rows)} configurations, mean over seeds, best test error first", box=box.SIMPLE_HEAD,
              pad_edge=False, padding=(0, 1), collapse_padding=True)
    t.add_column("label", overflow="fold", max_width=None if wide else 30)
    for a in axes:
        t.add_column(a, justify="right", no_wrap=True)
    for header, _, _ in cols:
        t.add_column(header, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(str(r["label"]), *[number(r.get(a)) for a in axes], *[cell(r, k, s) for _, k, s in cols])
    if not wide:
        t.caption = ("--wide adds the training loss's std, steps to target and the saturated share; table.md and "
                     "table.csv hold every column")
    return t


def _markdown(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _heatmap(df: pd.DataFrame, metric: str, col: str, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    d = df.copy()
    d[metric] = d[metric].astype(float)
    piv = d.pivot_table(index="label", columns=col, values=metric, aggfunc="mean", dropna=False)
    if piv.empty:
        return False
    title, cmap = HEATMAP_METRICS[metric]
    vals = piv.to_numpy(dtype=float)
    label_w = 0.08 * max(len(str(i)) for i in piv.index)  # inches for the row labels
    fig, ax = plt.subplots(figsize=(2.2 + label_w + 0.9 * vals.shape[1], 1.4 + 0.45 * vals.shape[0]), dpi=110)
    cm = plt.get_cmap(cmap).with_extremes(bad="#cccccc")
    im = ax.imshow(np.ma.masked_invalid(vals), cmap=cm, aspect="auto")
    ax.set_xticks(range(vals.shape[1]), [f"{c:g}" if isinstance(c, float) else str(c) for c in piv.columns])
    ax.set_yticks(range(vals.shape[0]), list(piv.index))
    ax.set_xlabel(col)
    ax.set_title(f"{title}\n(mean over other axes)", fontsize=10)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            v = vals[i, j]
            if not math.isfinite(v):
                ax.text(j, i, "div", ha="center", va="center", fontsize=8, color="black")
                continue
            r, g, b, _ = im.cmap(im.norm(v))
            ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8, color=ink)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
    return True


def make_report(store: Store | str | Path, out: str | Path, *, spec_hash: str | None = None) -> dict[str, Any]:
    """Write heatmaps (PNG), ``table.csv``, ``table.md`` and ``summary.json`` to ``out``.

    Returns:
        the summary (what ``--json`` prints): counts, the files written and the table rows.
    """
    st = store if isinstance(store, Store) else Store(store)
    df = st.to_dataframe(spec_hash)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    finished = df[df.status.isin(["done", "diverged"])]
    table = summary_table(finished) if len(finished) else finished
    write_atomic(outdir / "table.csv", table.to_csv(index=False))
    write_atomic(outdir / "table.md", _markdown(table) if len(table) else "no finished configurations\n")
    files += [str(outdir / "table.csv"), str(outdir / "table.md")]
    cols = [a for a in COLUMN_AXES if len(finished) and finished[a].nunique(dropna=False) > 1]
    for metric in HEATMAP_METRICS:
        for col in cols:
            p = outdir / f"heatmap_{metric}_by_{col}.png"
            if _heatmap(finished, metric, col, p):
                files.append(str(p))
    summary = {
        "store": st.path,
        "sweeps": [{"spec_hash": s["spec_hash"], "name": s["name"]} for s in st.sweeps()],
        "configs": len(df),
        "status": {k: int(v) for k, v in df.status.value_counts().items()},
        "heatmap_columns": cols,
        "table_axes": [c for c in table.columns if c in AXES] if len(table) else [],
        "files": files,
        "table": json.loads(table.to_json(orient="records")) if len(table) else [],
    }
    write_atomic(outdir / "summary.json", dumps(summary, indent=2))
    files.append(str(outdir / "summary.json"))
    return summary
