"""The typer application every ``actlab`` sub-command registers on, and the CLI's error boundary.

Every command runs inside one boundary (the root command's ``invoke``, and :func:`run_cli`
around it for usage errors and Ctrl-C):

- a *known* error (bad input or environment the user can fix: an unknown activation, a bad spec,
  a corrupt store or data file, an unwritable output path) prints one line ``error: ...`` and
  exits 2;
- an *unexpected* error prints one line with a hint, writes the traceback to a log file it
  names, and exits 1 (``--debug`` or ``ACTLAB_DEBUG=1`` prints the traceback instead);
- Ctrl-C exits 130 with one line.

Messages are printed as plain text, never as rich markup, so ``[...]`` in user input, paths or
install hints (``pip install 'actlab[ray]'``) survives.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup


class _Boundary(TyperGroup):
    """The root command: every sub-command's exception is turned into one line here (so the
    boundary holds also where the app is invoked directly, e.g. by typer's test runner)."""

    def invoke(self, ctx: Any) -> Any:
        cx = _click_exceptions()
        try:
            return super().invoke(ctx)
        except (cx.ClickException, typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the one boundary
            if type(e).__name__ == "Exit" and hasattr(e, "exit_code"):  # click's own, in older typer
                raise
            raise typer.Exit(_report(e, sys.argv[1:])) from None


app = typer.Typer(
    cls=_Boundary,
    name="actlab",
    help="See, compare and fix how nonlinearities shape the training of neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Print the traceback of an unexpected error "
                                     "instead of writing it to a log file (also ACTLAB_DEBUG=1; may come "
                                     "anywhere on the command line).")) -> None:
    global _DEBUG
    _DEBUG = _DEBUG or debug

DEBUG_FLAG = "--debug"
#: the default data directory in words (the lookup itself: actlab.lab.data.resolve_data_dir)
DATA_DIR_DEFAULT_TEXT = ("$ACTLAB_DATA, else the first of ~/.cache/actlab/data and a shared/data folder beside "
                         "the actlab checkout (or a folder above it) that holds MNIST or Fashion-MNIST")

# Errors the user can act on, by (module, class).  Looked up only in modules already imported,
# so the boundary itself never imports torch.
KNOWN_ERRORS = (
    ("actlab.activations.spec", "ActivationError"),
    ("actlab.theory.meanfield", "TheoryError"),
    ("actlab.sweep.spec", "SpecError"),
    ("actlab.sweep.store", "StoreError"),
    ("actlab.lab.data", "DatasetError"),
    ("actlab.lab.init", "InitError"),
    ("actlab.lab.train", "TrainError"),
    ("actlab.experiments", "UnknownExperiment"),
    ("actlab._io", "OutputError"),
    ("actlab._kv", "PairError"),
)


class CliError(Exception):
    """A known command-line error: :func:`run_cli` prints its message as one line and exits 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` (plain text, one line) as an error on stderr and return the exit to raise."""
    err_console.print(Text.assemble(("error: ", "bold red"), _one_line(message)), soft_wrap=True)
    return typer.Exit(code)


def note(message: str) -> None:
    """A one-line note on stderr (plain text), e.g. where a result went instead."""
    err_console.print(Text.assemble(("note: ", "yellow"), _one_line(message)), soft_wrap=True)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _known(e: BaseException) -> bool:
    for module, name in KNOWN_ERRORS:
        mod = sys.modules.get(module)
        cls = getattr(mod, name, None) if mod is not None else None
        if cls is not None and isinstance(e, cls):
            return True
    return isinstance(e, CliError)


def _message(e: BaseException) -> str:
    # KeyError's str() is the repr of its key; the message is what was meant.
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def _crash_log(argv: list[str], e: BaseException) -> Path:
    folder = Path(tempfile.gettempdir()) / "actlab-logs"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=time.strftime("crash-%Y%m%d-%H%M%S-"), suffix=".log", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write("actlab " + " ".join(argv) + "\n\n" + "".join(traceback.format_exception(e)))
    return Path(name)


_DEBUG = os.environ.get("ACTLAB_DEBUG", "") not in ("", "0")


def _report(e: BaseException, argv: list[str]) -> int:
    """Print ``e`` as one line (a known error: exit code 2; a bug: 1, traceback to a log file)."""
    if _known(e):
        if _DEBUG:
            traceback.print_exception(e)
        fail(_message(e))
        return 2
    if _DEBUG:
        traceback.print_exception(e)
        return 1
    try:
        where = f"the traceback is in {_crash_log(argv, e)}"
    except OSError:
        where = "no log could be written"
    fail(f"unexpected {type(e).__name__}: {_message(e)} -- this is a bug in actlab; {where} "
         f"(rerun with {DEBUG_FLAG} to print it)")
    return 1


def run_cli(argv: list[str] | None = None) -> NoReturn:
    """Run the ``actlab`` command line on ``argv`` (default ``sys.argv[1:]``) and exit."""
    global _DEBUG
    cx = _click_exceptions()
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = DEBUG_FLAG in args or os.environ.get("ACTLAB_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        code = app(args=args, prog_name="actlab", standalone_mode=False)
    except cx.NoArgsIsHelpError as e:  # bare `actlab sweep`: help was asked for, in effect
        typer.echo(e.ctx.get_help() if e.ctx is not None else str(e))
        code = 0
    except cx.UsageError as e:
        cmd = e.ctx.command_path if e.ctx is not None else "actlab"
        fail(f"{e.format_message()} (see `{cmd} --help`)")
        code = 2
    except cx.ClickException as e:
        fail(e.format_message())
        code = e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted")
        code = 130
    except Exception as e:  # noqa: BLE001 - raised outside a command (e.g. while parsing)
        if type(e).__name__ == "Exit" and hasattr(e, "exit_code"):
            code = e.exit_code
        else:
            code = _report(e, args)
    sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions() -> Any:
    """The exceptions module of the click that typer runs on (typer >= 0.20 vendors its own)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: plain click
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def check_output(path: Path | None, *, kind: str = "file", option: str = "--out",
                 suffixes: tuple[str, ...] = ()) -> Path | None:
    """Check an output path before any work starts (``None`` passes); exits 2 naming the problem."""
    if path is None:
        return None
    from actlab._io import check_output as _check

    return _check(path, kind=kind, option=option, suffixes=suffixes)  # type: ignore[arg-type]


def print_json(data: Any) -> None:
    """``--json``: the result as strict JSON on stdout, nothing else (NaN and inf as ``null``)."""
    from actlab._json import dumps

    typer.echo(dumps(data))


def write_json(path: Path, data: Any) -> Path:
    """``--json-out PATH``: the result as strict JSON in a file, replaced atomically."""
    from actlab._io import write_atomic
    from actlab._json import dumps

    return write_atomic(path, dumps(data))


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it is not a sub-command, goes to a default one.

    ``default`` names that sub-command; ``flag_commands`` maps an old mode flag to the sub-command
    it now is (``actlab theory tanh --gains`` -> ``actlab theory gains``), so older command lines
    keep working.
    """

    default: str = ""
    flag_commands: dict[str, str] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            for flag, command in self.flag_commands.items():
                if flag in args:
                    args = [command, *[a for a in args if a != flag]]
                    break
            else:
                if self.default:
                    args = [self.default, *args]
        return super().parse_args(ctx, args)


def default_group(default: str, flag_commands: dict[str, str] | None = None) -> type[DefaultCommandGroup]:
    """A :class:`DefaultCommandGroup` class that sends unknown first arguments to ``default``."""
    return type("DefaultGroup", (DefaultCommandGroup,), {"default": default, "flag_commands": dict(flag_commands or {})})


def table_console(wide: bool = False) -> Console:
    """Where tables go: the terminal's width capped at 80 columns (columns fold), or with
    ``--wide`` as wide as the table needs, also in a pipe (nothing is cut)."""
    if wide:
        return Console(width=max(console.width, 200), highlight=False)
    return Console(width=min(console.width, 80), highlight=False, force_terminal=console.is_terminal)
