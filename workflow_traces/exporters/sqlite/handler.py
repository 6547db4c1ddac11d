"""The SQLite sink: one connection owned by the worker, WAL, batched parameterised inserts.

Each record is one row of ``traces``, keyed by ``record_id`` (``INSERT OR IGNORE``, so a batch
written twice keeps one copy). The schema (see ``_sqlite_schema``) carries a version in
``PRAGMA user_version`` and is migrated forward on open, inside a write transaction so several
processes can open it at once.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from workflow_traces.core import record as _record
from workflow_traces.core.record import (
    F_KIND,
    F_LEVELNO,
    F_MESSAGE,
    F_PARENT_RUN_ID,
    F_RECORD_ID,
    F_RUN_ID,
    F_SPAN_ID,
    F_TIME_NS,
    F_TRACE_ID,
    F_WORKFLOW_NAME,
    Record,
    RecordValues,
)
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.base import Exporter
from workflow_traces.exporters.encode import clean_text, dumps
from workflow_traces.exporters.sqlite.schema import (
    COLUMNS,
    DETAIL_FIELDS,
    INSERT_COLUMNS,
    SCHEMA_VERSION,
    migrate,
)
from workflow_traces.pipeline.channel import DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_SIZE, Overflow
from workflow_traces.pipeline.handler import BufferedHandler, check_positive, from_sink_config

__all__ = [
    "COLUMNS",
    "DEFAULT_SQLITE_PATH",
    "INSERT_COLUMNS",
    "SCHEMA_VERSION",
    "SQLiteExporter",
    "SQLiteHandler",
]

#: Where the SQLite sink writes when no path is given.
DEFAULT_SQLITE_PATH = "./logs/workflow_traces.db"
BUSY_TIMEOUT_S = 30.0
PAGE_SIZE = 16384
_INSERT_INTO = f"INSERT OR IGNORE INTO traces ({', '.join(INSERT_COLUMNS)}) VALUES "  # noqa: S608
_ROW_MARKS = "(" + ",".join("?" for _ in INSERT_COLUMNS) + ")"
_WIDTH = len(INSERT_COLUMNS)


class _Inserts:
    """Multi-row ``INSERT ... VALUES (...), (...)`` statements, every value a bound parameter.

    Not ``executemany``: it releases and retakes the GIL around every row, and while another
    thread (the file sink's worker, the caller) holds the GIL, each retake waits for the
    interpreter's switch interval. One statement of many rows takes the GIL once to bind and
    releases it once for SQLite's work, which then runs beside the other threads.

    A batch is written in statements of up to ``rows`` rows (fewer when SQLite allows fewer
    parameters), and what is left in statements of powers of two, so the connection's
    statement cache holds every shape used.
    """

    def __init__(self, rows: int, max_params: int) -> None:
        most = max(1, min(rows, max_params // _WIDTH))
        sizes = {most} | {1 << i for i in range(most.bit_length()) if 1 << i < most}
        self.sizes = sorted(sizes, reverse=True)
        self.sql = {n: _INSERT_INTO + ",".join([_ROW_MARKS] * n) for n in self.sizes}

    def statements(self, params: list[Any]) -> list[tuple[str, list[Any]]]:
        """``params`` (rows of INSERT_COLUMNS values, flat) as (sql, parameters) pairs."""
        out: list[tuple[str, list[Any]]] = []
        width = _WIDTH
        start, total = 0, len(params) // width
        for n in self.sizes:
            while total - start >= n:
                out.append((self.sql[n], params[start * width : (start + n) * width]))
                start += n
        return out


#: A record's DETAIL_FIELDS, in order.
_detail_of = itemgetter(*(Record._fields.index(name) for name in DETAIL_FIELDS))
_decode = bytes.decode


def _params(batch: Sequence[RecordValues]) -> list[Any]:
    """The batch's rows as one flat list of INSERT_COLUMNS values, row after row. A plain
    tuple's record id is its counter alone (see ``_record``): this process's prefix makes it
    whole here. (Joining the two in the INSERT, ``?||?``, cost SQLite twice its time a row.)

    One loop over the batch, the detail column encoded through map (in C): the worker holds the
    GIL for all of this. Missing parent run id, workflow name, trace and span ids are stored as
    "" (the sqlite3 module binds None through a slower path); the view gives them back as
    NULL.
    """
    try:
        details = list(map(_decode, map(orjson.dumps, map(_detail_of, batch))))
    except (TypeError, RecursionError):  # odd extras: encode each row the safe way
        details = [dumps(_detail_of(rec)).decode("utf-8") for rec in batch]
    params: list[Any] = []
    extend = params.extend
    prefix = _record._id_prefix
    for rec, detail in zip(batch, details, strict=True):
        rid = rec[F_RECORD_ID]
        extend(
            (
                prefix + str(rid) if type(rid) is int else rid,
                rec[F_TIME_NS],
                rec[F_LEVELNO],
                rec[F_MESSAGE],
                rec[F_RUN_ID],
                rec[F_PARENT_RUN_ID] or "",
                rec[F_WORKFLOW_NAME] or "",
                rec[F_KIND],
                rec[F_TRACE_ID] or "",
                rec[F_SPAN_ID] or "",
                detail,
            )
        )
    return params


def _clean(params: list[Any]) -> list[Any]:
    """``params`` with text that is not valid UTF-8 (lone surrogates) escaped."""
    return [clean_text(v) if isinstance(v, str) else v for v in params]


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, synchronous=NORMAL and a busy timeout, its
    schema migrated to the current version. A new database gets 16 KiB pages (set before WAL
    is, which fixes the page size): inserts cost SQLite a quarter less than with the default
    4 KiB (measured; 32 and 64 KiB gained nothing more). An existing one keeps its own."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    migrate(conn)
    return conn


class SQLiteExporter(Exporter):
    """Inserts batches into one SQLite database, one transaction a batch.

    ``batch`` is the sink's ``buffer_size``: records per transaction. A backlog comes up to
    ``group`` batches at a time, committed together and bound as one statement, so the worker
    takes and releases the GIL once for all of them.
    """

    #: Batches hold plain tuples of a record's values (see Channel._take).
    takes_values = True
    group = 16

    def __init__(self, path: Path, batch: int = 100) -> None:
        self.path = path
        self.name = f"sqlite:{path}"
        self._rows = batch * self.group
        self._conn: sqlite3.Connection | None = None
        self._ident: tuple[int, int] | None = None
        self._inserts: _Inserts | None = None

    def _file_ident(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def export(self, batch: Sequence[RecordValues]) -> None:
        if self._conn is not None and self._file_ident() != self._ident:
            # The database file was deleted or replaced: rows written through the old
            # connection would vanish without an error. Connect again (or fail, and report).
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = connect(self.path)
            self._ident = self._file_ident()
            limit = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._inserts = _Inserts(self._rows, limit)
        conn, inserts = self._conn, self._inserts
        assert inserts is not None
        params = _params(batch)
        try:
            statements = inserts.statements(params)
            one = len(statements) == 1  # a single statement is a transaction of its own
            if not one:
                conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, values in statements:
                    conn.execute(sql, values)
                if not one:
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except UnicodeEncodeError:
            # Rare: some text holds lone surrogates. Escape them and write the batch again.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, cleaned in inserts.statements(_clean(params)):
                    conn.execute(sql, cleaned)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def shutdown(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def after_fork(self) -> None:
        self._conn = None  # the parent's connection must not be used (or closed) here


def _prepare_db(path: str | os.PathLike[str], field: str) -> Path:
    db = Path(path)
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{field}: cannot create folder {str(db.parent)!r}: {exc.strerror}"
        ) from exc
    if db.is_dir():
        raise ConfigError(f"{field}: expected a database file, got the folder {str(db)!r}")
    if not os.access(db.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{field}: folder {str(db.parent)!r} is not writable")
    return db


class SQLiteHandler(BufferedHandler):
    """Writes records into a SQLite database. ``buffer_size`` is in records: the worker writes a
    batch once that many are queued, and at least every ``flush_interval`` seconds."""

    def __init__(
        self,
        run_id: str,
        parent_run_id: str | None = None,
        db_path: str | os.PathLike[str] | None = None,
        extras: dict[str, Any] | None = None,
        *,
        buffer_size: int = 100,
        flush_interval: float = 2.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        overflow: Overflow = "block",
        block_timeout: float = 1.0,
        fail_silently: bool = True,
        level: int = 0,
    ) -> None:
        check_positive("buffer_size", buffer_size)
        extras = extras or {}
        path = db_path or extras.get("path") or DEFAULT_SQLITE_PATH
        self.db_path = _prepare_db(path, "path")
        super().__init__(
            SQLiteExporter(self.db_path, batch=buffer_size),
            run_id=run_id,
            parent_run_id=parent_run_id,
            extras=extras,
            batch_records=buffer_size,
            flush_interval=flush_interval,
            queue_size=queue_size,
            queue_bytes=queue_bytes,
            overflow=overflow,
            block_timeout=block_timeout,
            fail_silently=fail_silently,
            level=level,
        )
        self.buffer_size = buffer_size
        self.flush_interval = flush_interval

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> SQLiteHandler:
        """The handler for a validated ``SQLiteConfig`` and a ``SinkContext`` (the sink
        registry's builder)."""
        return from_sink_config(cls, cfg, ctx, "path")
