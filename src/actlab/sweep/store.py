"""The sweep store: SQLite (WAL) by default, resumable, exportable to CSV, Parquet and pandas.

Tables:

- ``sweeps``: one row per spec (its hash, name and JSON);
- ``configs``: one row per configuration (hash, JSON, status ``pending``/``done``/``diverged``);
- ``sweep_configs``: which configurations a spec holds (a configuration shared by two specs
  is trained once);
- ``records``: one row per (configuration, recorded step): batch loss and the per-model
  statistics averaged over layers;
- ``layer_records``: one row per (configuration, recorded step, layer);
- ``results``: one row per finished configuration: the final metrics.

A chunk's results and its status change are written in one transaction, so a run killed at
any instant (SIGKILL included) leaves each configuration either finished with every row or
pending with none; a restart trains only the pending ones.  Primary keys make a duplicate
row impossible, and a result delivered twice (a retried Ray task) is ignored.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actlab.sweep.spec import AXES, Config, SweepSpec

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from actlab.lab.train import TrainResult

FINISHED = ("done", "diverged")
RESULT_COLUMNS = ("train_loss", "train_error", "test_loss", "test_error", "last_batch_loss",
                  "steps_to_batch_loss", "inactive", "saturated", "diverged", "diverged_at", "wall_time",
                  "steps_to_target")
RECORD_COLUMNS = ("loss", "param_grad_norm", "inactive", "saturated", "weight_grad_norm")
LAYER_COLUMNS = ("param_grad_norm", "inactive", "saturated", "weight_grad_norm")
# Columns of stores written before the probe's vocabulary and the one result type (lab.train's
# TrainResult) were adopted, renamed when opened: a store's old ``steps_to_target`` was the first
# step whose batch loss met ``Record.target_loss``, today's ``steps_to_batch_loss``.
_RENAMED = {"grad_norm": "param_grad_norm", "dead_fraction": "inactive", "saturation_fraction": "saturated",
            "steps_to_target": "steps_to_batch_loss", "wall_s": "wall_time"}
# Columns added since a store's tables were made: added (NULL in the old rows, which did not
# measure them) when opened, after the renames.
_ADDED = {"records": ("weight_grad_norm",), "layer_records": ("weight_grad_norm",), "results": ("steps_to_target",)}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sweeps (
    spec_hash TEXT PRIMARY KEY, name TEXT NOT NULL, spec_json TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    hash TEXT PRIMARY KEY, json TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', updated REAL);
CREATE TABLE IF NOT EXISTS sweep_configs (
    spec_hash TEXT NOT NULL, config_hash TEXT NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY (spec_hash, config_hash));
CREATE TABLE IF NOT EXISTS records (
    config_hash TEXT NOT NULL, step INTEGER NOT NULL, {", ".join(f"{c} REAL" for c in RECORD_COLUMNS)},
    PRIMARY KEY (config_hash, step));
CREATE TABLE IF NOT EXISTS layer_records (
    config_hash TEXT NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL,
    {", ".join(f"{c} REAL" for c in LAYER_COLUMNS)}, PRIMARY KEY (config_hash, step, layer));
CREATE TABLE IF NOT EXISTS results (
    config_hash TEXT PRIMARY KEY, {", ".join(f"{c} REAL" for c in RESULT_COLUMNS)}, finished REAL NOT NULL);
"""


class StoreError(Exception):
    """The store cannot be used as asked: not an SQLite file, someone else's database, a folder,
    locked by another writer, or read-only (one-line message naming the file; nothing changed)."""


_TABLES = ("sweeps", "configs", "sweep_configs", "records", "layer_records", "results")
_LOCK_WAIT_S = 2.0


class Store:
    """A sweep store in one SQLite file (WAL journal).

    Args:
        path: the database file (created with its tables if missing); ``":memory:"`` works too.
        readonly: open an existing store for reading only (reports); nothing in the file changes.

    Raises:
        StoreError: ``path`` is a folder, not an SQLite file, an SQLite file of something else
            (it has tables, none of them a sweep store's), read-only, or being written by another
            process.  The file is left exactly as it was.

    Example::

        >>> store = Store("sweep.db")
        >>> h = store.add_sweep(spec)
        >>> store.pending(h)          # configurations still to train
        >>> store.to_dataframe(h)     # one row per configuration, config and final metrics
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = str(path)
        if self.path == ":memory:":
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.executescript(_SCHEMA)
            return
        p = Path(self.path)
        name = repr(self.path)
        if p.is_dir():
            raise StoreError(f"store {name} is a folder; give a file path such as runs/sweep.db")
        if readonly and not p.is_file():
            raise StoreError(f"store not found: {name}")
        if p.is_file():
            _inspect(p)  # read-only look first: a foreign or broken file is refused untouched
        try:
            if not readonly:
                p.parent.mkdir(parents=True, exist_ok=True)
            # as_uri() percent-encodes, so "?", "#" and spaces in the path are safe.
            uri = _read_uri(p) if readonly else p.resolve().as_uri()
            self.conn = sqlite3.connect(uri, uri=True, timeout=_LOCK_WAIT_S, isolation_level=None,
                                        check_same_thread=False)
            if readonly:
                if not (self._old_columns() or self._renames() or self._additions()):
                    return
                # A store from before errors replaced accuracies, or before today's columns:
                # upgrade it once, then read it.
                self.conn.close()
                self.__init__(path)  # type: ignore[misc]
                return
            # One writer at a time: a second sweep on the same store is refused, not queued.
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("ROLLBACK")
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process in WAL mode (only an OS crash can drop the
            # last transactions), and much faster than FULL.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
            self.conn.execute(f"PRAGMA busy_timeout = {60_000}")
            self._probe_vocabulary()
            self._errors_not_accuracies()
            self._added_columns()
        except sqlite3.OperationalError as e:
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                raise StoreError(f"store {name} is locked by another process (is a sweep running on it?)") from None
            if "readonly" in msg or "read-only" in msg:
                raise StoreError(f"store {name} is read-only; copy it or give another --store") from None
            raise StoreError(f"store {name} cannot be opened: {msg}") from None
        except OSError as e:
            raise StoreError(f"store {name} cannot be created: {e.strerror or e}") from None

    def _errors_not_accuracies(self) -> None:
        """A store written before the lab and the engine shared one vocabulary holds accuracies:
        each becomes the error rate ``1 - accuracy`` under the error's name, in one transaction
        (a half-done migration would leave accuracies under an error's name)."""
        old = self._old_columns()
        if not old:
            return
        with self._tx():
            for sp in old:
                self.conn.execute(f"ALTER TABLE results RENAME COLUMN {sp}_accuracy TO {sp}_error")
                self.conn.execute(f"UPDATE results SET {sp}_error = 1.0 - {sp}_error WHERE {sp}_error IS NOT NULL")

    def _renames(self) -> list[tuple[str, str, str]]:
        """``(table, old, new)`` of the ``_RENAMED`` columns this store still has under the old name."""
        todo = []
        for table in ("records", "layer_records", "results"):
            cols = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            todo += [(table, old, new) for old, new in _RENAMED.items() if old in cols and new not in cols]
        return todo

    def _additions(self) -> list[tuple[str, str]]:
        """``(table, column)`` of the ``_ADDED`` columns this store lacks.  Asked after the renames:
        an old store's ``steps_to_target`` (batch loss) is renamed first, then today's is added."""
        todo = []
        for table, cols in _ADDED.items():
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            todo += [(table, c) for c in cols if c not in have]
        return todo

    def _probe_vocabulary(self) -> None:
        """Rename the columns of a store written before the engine took the probe's names and the
        one result type's (``_RENAMED``), in one transaction."""
        todo = self._renames()
        if not todo:
            return
        with self._tx():
            for table, old, new in todo:
                self.conn.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")

    def _added_columns(self) -> None:
        """Give a store's tables the columns added since it was written (``_ADDED``: NULL in its
        old rows, which did not measure them), in one transaction, after the renames."""
        todo = self._additions()
        if not todo:
            return
        with self._tx():
            for table, c in todo:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {c} REAL")

    def _old_columns(self) -> list[str]:
        """The splits whose results still hold an accuracy instead of an error rate."""
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(results)")}
        return [sp for sp in ("train", "test") if f"{sp}_accuracy" in have and f"{sp}_error" not in have]

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writing
    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)

    def add_sweep(self, spec: SweepSpec) -> str:
        """Register ``spec`` and its configurations (idempotent); returns the spec hash."""
        h = spec.hash
        configs = spec.configs()
        now = time.time()
        with self._tx():
            self.conn.execute("INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, ?)",
                              (h, spec.name, json.dumps(spec.to_dict(), sort_keys=True), now))
            self.conn.executemany(
                "INSERT OR IGNORE INTO configs (hash, json, status, updated) VALUES (?, ?, 'pending', ?)",
                [(c.hash, json.dumps(c.to_dict(), sort_keys=True), now) for c in configs])
            self.conn.executemany("INSERT OR IGNORE INTO sweep_configs VALUES (?, ?, ?)",
                                  [(h, c.hash, i) for i, c in enumerate(configs)])
        return h

    def write_results(self, results: Iterable[TrainResult]) -> int:
        """Write finished models (records, layer records, final metrics, status) in one transaction.

        Returns the number of configurations written; one already finished is skipped.
        """
        n = 0
        now = time.time()
        with self._tx():
            for r in results:
                h = r.config.hash
                row = self.conn.execute("SELECT status FROM configs WHERE hash = ?", (h,)).fetchone()
                if row is not None and row[0] in FINISHED:
                    continue
                if row is None:
                    self.conn.execute("INSERT INTO configs (hash, json, status, updated) VALUES (?, ?, 'pending', ?)",
                                      (h, json.dumps(r.config.to_dict(), sort_keys=True), now))
                self.conn.executemany(
                    f"INSERT INTO records (config_hash, step, {', '.join(RECORD_COLUMNS)}) "
                    f"VALUES (?, ?, {', '.join('?' * len(RECORD_COLUMNS))})",
                    [(h, rec["step"], *(rec.get(c) for c in RECORD_COLUMNS)) for rec in r.records])
                self.conn.executemany(
                    f"INSERT INTO layer_records (config_hash, step, layer, {', '.join(LAYER_COLUMNS)}) "
                    f"VALUES (?, ?, ?, {', '.join('?' * len(LAYER_COLUMNS))})",
                    [(h, rec["step"], rec["layer"], *(rec.get(c) for c in LAYER_COLUMNS)) for rec in r.layers])
                f = {**r.final, "steps_to_target": r.steps_to_target, "diverged": r.diverged,
                     "diverged_at": r.diverged_at, "wall_time": r.wall_time}
                self.conn.execute(
                    f"INSERT INTO results (config_hash, {', '.join(RESULT_COLUMNS)}, finished) "
                    f"VALUES (?, {', '.join('?' * len(RESULT_COLUMNS))}, ?)",
                    (h, *(_sql(f.get(c)) for c in RESULT_COLUMNS), now))
                self.conn.execute("UPDATE configs SET status = ?, updated = ? WHERE hash = ?", (r.status, now, h))
                n += 1
        return n

    # ---------------------------------------------------------------- reading
    def sweeps(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT spec_hash, name, spec_json, created FROM sweeps ORDER BY created").fetchall()
        return [{"spec_hash": h, "name": n, "spec": json.loads(j), "created": c} for h, n, j, c in rows]

    def configs(self, spec_hash: str | None = None, status: Sequence[str] | None = None) -> list[Config]:
        """Configurations (of one sweep, or all), optionally only those with a given status."""
        sql, args = self._select_configs("c.json", spec_hash, status)
        return [Config.from_dict(json.loads(j)) for (j,) in self.conn.execute(sql, args)]

    def pending(self, spec_hash: str | None = None) -> list[Config]:
        """Configurations not finished yet (what a restarted run trains)."""
        return self.configs(spec_hash, status=("pending",))

    def status_counts(self, spec_hash: str | None = None) -> dict[str, int]:
        sql, args = self._select_configs("c.status", spec_hash, None)
        out: dict[str, int] = {}
        for (s,) in self.conn.execute(sql, args):
            out[s] = out.get(s, 0) + 1
        return out

    def count(self, table: str) -> int:
        if table not in ("sweeps", "configs", "sweep_configs", "records", "layer_records", "results"):
            raise ValueError(f"unknown table {table!r}")
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def _select_configs(self, cols: str, spec_hash: str | None, status: Sequence[str] | None):
        if spec_hash is None:
            sql, args = f"SELECT {cols} FROM configs c WHERE 1", []
        else:
            sql = (f"SELECT {cols} FROM configs c JOIN sweep_configs s ON s.config_hash = c.hash "
                   f"WHERE s.spec_hash = ?")
            args = [spec_hash]
        if status:
            sql += f" AND c.status IN ({', '.join('?' * len(status))})"
            args += list(status)
        sql += " ORDER BY s.idx" if spec_hash is not None else " ORDER BY c.rowid"
        return sql, args

    def _resolve(self, spec_hash: str | None) -> str | None:
        if spec_hash is None:
            return None
        # A prefix compared as text (LIKE would treat "%" and "_" in the user's prefix as wildcards).
        rows = [h for (h,) in self.conn.execute("SELECT spec_hash FROM sweeps WHERE substr(spec_hash, 1, ?) = ?",
                                                (len(spec_hash), spec_hash))]
        if len(rows) != 1:
            known = ", ".join(f"{s['spec_hash'][:12]} ({s['name']})" for s in self.sweeps()) or "none"
            raise StoreError(f"spec hash {spec_hash!r} matches {len(rows)} sweeps in {self.path!r}; its sweeps: {known}")
        return rows[0]

    # ---------------------------------------------------------------- frames and export
    def to_dataframe(self, spec_hash: str | None = None) -> pd.DataFrame:
        """One row per configuration: its axes, ``label``, ``config_hash``, ``status`` and final metrics."""
        import pandas as pd

        spec_hash = self._resolve(spec_hash)
        sql, args = self._select_configs("c.hash, c.json, c.status", spec_hash, None)
        rows = []
        results = {r[0]: r[1:] for r in self.conn.execute(
            f"SELECT config_hash, {', '.join(RESULT_COLUMNS)} FROM results")}
        for h, j, status in self.conn.execute(sql, args):
            d = json.loads(j)
            c = Config.from_dict(d)
            row: dict[str, Any] = {"config_hash": h, "status": status, "label": c.label}
            row.update({a: d.get(a) for a in AXES})
            row["activation_params"] = json.dumps(d.get("activation_params") or {}, sort_keys=True)
            res = results.get(h)
            row.update({k: (res[i] if res else None) for i, k in enumerate(RESULT_COLUMNS)})
            rows.append(row)
        df = pd.DataFrame(rows, columns=["config_hash", "status", "label", *AXES, "activation_params",
                                         *RESULT_COLUMNS])
        df["bias_init"] = df["bias_init"].astype(str)
        if len(df):
            df["diverged"] = df["diverged"].astype("boolean")
        return df

    def records_dataframe(self, spec_hash: str | None = None, *, layers: bool = False) -> pd.DataFrame:
        """Recorded steps (``layers``: per layer) joined with each configuration's label and axes."""
        import pandas as pd

        spec_hash = self._resolve(spec_hash)
        table, cols = ("layer_records", ("step", "layer", *LAYER_COLUMNS)) if layers else \
            ("records", ("step", *RECORD_COLUMNS))
        sql = f"SELECT r.config_hash, {', '.join('r.' + c for c in cols)} FROM {table} r"
        args: list[Any] = []
        if spec_hash is not None:
            sql += " JOIN sweep_configs s ON s.config_hash = r.config_hash WHERE s.spec_hash = ?"
            args.append(spec_hash)
        sql += " ORDER BY r.config_hash, r.step" + (", r.layer" if layers else "")
        df = pd.DataFrame(self.conn.execute(sql, args).fetchall(), columns=["config_hash", *cols])
        meta = self.to_dataframe(spec_hash)[["config_hash", "label", *AXES]]
        return df.merge(meta, on="config_hash", how="left")

    def export(self, path: str | Path, *, spec_hash: str | None = None, table: str = "results") -> Path:
        """Write ``table`` (``results``, ``records`` or ``layers``) as CSV or Parquet (by suffix)."""
        frames = {"results": lambda: self.to_dataframe(spec_hash),
                  "records": lambda: self.records_dataframe(spec_hash),
                  "layers": lambda: self.records_dataframe(spec_hash, layers=True)}
        if table not in frames:
            raise ValueError(f"unknown table {table!r}; valid: {', '.join(frames)}")
        df = frames[table]()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() == ".csv":
            df.to_csv(p, index=False)
        elif p.suffix.lower() in (".parquet", ".pq"):
            df.to_parquet(p, index=False)  # pyarrow
        else:
            raise ValueError(f"unknown export format {p.suffix!r}; valid: .csv, .parquet")
        return p


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one writer at a time."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _sql(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None  # not measured (NaN) or not finite: NULL, as the store always wrote it
    return v


def _read_uri(path: Path) -> str:
    """The URI that opens ``path`` for reading only.

    SQLite reads a WAL database through a ``-shm`` file beside it; where the folder cannot be
    written (a read-only mount, a location root cannot write) it cannot make one and refuses
    the file, so there the database is opened ``immutable``: nobody can change it there either.
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".actlab-probe-", dir=path.parent)
    except OSError:
        return uri + "&immutable=1"
    os.close(fd)
    os.unlink(tmp)
    return uri


def _inspect(path: Path) -> None:
    """Refuse, without writing a byte, a file that is not an (empty or actlab) SQLite database."""
    name = repr(str(path))
    if path.stat().st_size == 0:
        return  # an empty file is an empty database
    # Read through SQLite, not open(): closing a plain file descriptor would drop the POSIX locks
    # this process holds on the database through another connection.
    try:
        conn = sqlite3.connect(_read_uri(path), uri=True, timeout=_LOCK_WAIT_S)
        try:
            tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "sweeps" in tables:
                conn.execute("SELECT COUNT(*) FROM sweeps").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        if "not a database" in str(e):
            raise StoreError(f"store {name} is not an SQLite file (corrupt, or not a sweep store)") from None
        if "unable to open" in str(e):
            raise StoreError(f"store {name} cannot be opened ({e})") from None
        raise StoreError(f"store {name} is corrupt ({e})") from None
    if tables and not set(_TABLES) & tables:
        raise StoreError(f"store {name} is an SQLite database of something else (tables: "
                         f"{', '.join(sorted(tables)[:5])}); give another --store")


def open_store(path: str | Path) -> Store:
    """Open (or create) the store at ``path``."""
    return Store(path)
