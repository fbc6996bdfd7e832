"""Writing results safely: output paths checked before the work, files replaced atomically.

Every file actlab writes (reports, JSON, CSV, figures, exports) goes through :func:`write_atomic`:
the bytes go to a temporary file beside the target, which is then renamed over it, so a reader
never sees half a file and a crash never leaves one.  If the target cannot be written after the
work is done, the result is saved to a named file in the temporary directory instead and the
:class:`OutputError` says where -- a finished result is never lost.

:func:`check_output` runs the cheap checks (the folder exists or can be made, is a folder, is
writable; the target is not a folder) *before* a long job starts.  "Writable" is tried, not
looked up: permission bits do not stop root, while a read-only mount, ``/proc`` or ``/sys`` do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

__all__ = ["OutputError", "check_output", "write_atomic"]


class OutputError(OSError):
    """An output path cannot be written (the message names the path and why, in one line)."""


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(path: str | Path, *, kind: Literal["file", "dir"] = "file", option: str = "--out",
                 suffixes: tuple[str, ...] = ()) -> Path:
    """Check that ``path`` can be written as a ``kind`` before any work is done; return it.

    Nothing is left behind.  The checks: a file target is not an existing folder and a folder
    target not an existing file; the nearest existing ancestor is a folder (not a file such as
    ``report.txt/out.json``) in which a file can be created (tried with a temporary file, removed
    at once: ``os.access`` answers yes to root on a folder root still cannot write, such as one
    under ``/proc``); an existing file target is writable; ``suffixes`` (e.g. ``(".png",)``) lists
    the allowed file endings.

    Raises:
        OutputError: with a one-line message naming ``option``, the path and the reason.
    """
    p = Path(path).expanduser()
    where = f"{option} {str(path)!r}"
    if kind == "file":
        if p.is_dir():
            raise OutputError(f"{where} is a folder; give a file path")
        if suffixes and p.suffix.lower() not in suffixes:
            raise OutputError(f"{where} must end with {' or '.join(suffixes)}")
        parent = p.parent
    else:
        if p.exists() and not p.is_dir():
            raise OutputError(f"{where} is an existing file; give a folder")
        parent = p
    base = _nearest_existing(parent.absolute())
    if not base.is_dir():
        raise OutputError(f"{where}: {str(base)!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".actlab-write-test-", dir=base)
    except OSError as e:
        raise OutputError(f"{where}: folder {str(base)!r} is not writable ({_reason(e)})") from None
    os.close(fd)
    os.unlink(probe)
    if kind == "file" and p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"{where}: the file is read-only")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename; return ``path``.

    Creates missing parent folders.  On failure the data goes to a named file in the system's
    temporary folder instead.

    Raises:
        OutputError: the target could not be written; the message says where the data is now.
    """
    p = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    tmp: str | None = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have, or
        # the mode of the file it replaces.
        os.chmod(tmp, p.stat().st_mode & 0o7777 if p.exists() else 0o666 & ~_umask())
        os.replace(tmp, p)
        return p
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        fd, saved = tempfile.mkstemp(prefix=f"actlab-{p.stem}-", suffix=p.suffix)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        raise OutputError(f"cannot write {str(p)!r} ({_reason(e)}); the result is saved in {saved}") from None
