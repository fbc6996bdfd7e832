"""``actlab`` command line: thin typer commands over the library.

Each sub-command lives in its own module and registers itself on :data:`actlab.cli.app.app`.
"""

from __future__ import annotations

from actlab.cli import catalog  # noqa: F401  (list, show)
from actlab.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
