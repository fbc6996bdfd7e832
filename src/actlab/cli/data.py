"""``actlab data``: list the data sets, download MNIST / Fashion-MNIST, verify checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from actlab.cli.app import DATA_DIR_DEFAULT_TEXT, app, check_output, console, fail, print_json

data_app = typer.Typer(help="Data sets: list, download (with checksums), verify.", no_args_is_help=True)
app.add_typer(data_app, name="data")

_DATA_DIR = typer.Option(None, "--data-dir", help=f"Data directory (default: {DATA_DIR_DEFAULT_TEXT}).")


@data_app.command("list")
def list_(data_dir: Optional[Path] = _DATA_DIR, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every data set, where it comes from, and whether it is available here."""
    _existing_dir(data_dir)
    from actlab.lab.data import DATASETS, is_available, resolve_data_dir

    rows = [
        {"name": d.name, "task": d.task, "source": d.source, "available": is_available(d.name, data_dir),
         "description": d.description}
        for d in DATASETS.values()
    ]
    if as_json:
        print_json({"data_dir": str(resolve_data_dir(data_dir)), "datasets": rows})
        return
    table = Table(title=f"Data sets (data directory: {resolve_data_dir(data_dir)})")
    for col in ("name", "task", "source", "available", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["task"], r["source"], "[green]yes[/]" if r["available"] else "[red]no[/]",
                      r["description"])
    console.print(table)


@data_app.command("verify")
def verify(name: str = typer.Argument(..., help="mnist or fashion_mnist"), data_dir: Optional[Path] = _DATA_DIR) -> None:
    """Check the SHA-256 of the decompressed IDX files against the canonical checksums."""
    _existing_dir(data_dir)
    from actlab.lab.data import DatasetError, verify as _verify

    try:
        status = _verify(name, data_dir)
    except DatasetError as e:
        raise fail(str(e)) from None
    for stem, s in status.items():
        console.print(f"{stem}: {'[green]' if s == 'ok' else '[red]'}{s}[/]", highlight=False)
    if any(s != "ok" for s in status.values()):
        raise typer.Exit(1)


@data_app.command("download")
def download(
    name: str = typer.Argument(..., help="mnist or fashion_mnist"),
    data_dir: Optional[Path] = _DATA_DIR,
    force: bool = typer.Option(False, "--force", help="Download even files already present and valid."),
) -> None:
    """Download the four IDX files from public mirrors and verify their checksums."""
    from actlab.lab.data import DatasetError, download as _download, resolve_data_dir

    check_output(resolve_data_dir(data_dir, name), kind="dir", option="--data-dir")

    try:
        folder = _download(name, data_dir, force=force, log=lambda m: console.print(m, highlight=False))
    except DatasetError as e:
        raise fail(str(e)) from None
    console.print(f"[green]ok[/]: {folder}")


def _existing_dir(data_dir: Optional[Path]) -> None:
    if data_dir is not None and not data_dir.is_dir():
        raise fail(f"--data-dir {str(data_dir)!r} is not a directory")
