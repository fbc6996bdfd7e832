"""The typer application every ``actlab`` sub-command registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="actlab",
    help="See, compare and fix how nonlinearities shape the training of neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print ``message`` as an error on stderr and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)
