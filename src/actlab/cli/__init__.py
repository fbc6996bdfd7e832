"""``actlab`` command line: thin typer commands over the library.

Each sub-command lives in its own module and registers itself on :data:`actlab.cli.app.app`;
the modules import torch and the library only inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

from actlab.cli import catalog  # noqa: F401  (list, show)
from actlab.cli import data  # noqa: F401  (data list/verify/download)
from actlab.cli import lab  # noqa: F401  (lab, run)
from actlab.cli import play  # noqa: F401  (play)
from actlab.cli import probe  # noqa: F401  (probe)
from actlab.cli import sweep  # noqa: F401  (sweep run/report)
from actlab.cli import theory  # noqa: F401  (theory)
from actlab.cli.app import app, run_cli


def main() -> None:
    """The ``actlab`` console script: the app inside the error boundary."""
    run_cli()


__all__ = ["app", "main"]
