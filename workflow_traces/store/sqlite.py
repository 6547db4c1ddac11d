"""Reading the SQLite sink's database: filtered, paged reads in SQL (parameterised, on indexes).

A run's records come in pages of ``PAGE_SIZE`` rows, ordered by ``(time_ns, seq)`` on the index
``(run_id, time_ns)`` (whose entries end with the rowid ``seq``), each page starting after the
last row of the one before: memory stays flat whatever the run's size. A version 2 database is
read from its table directly, the record's other fields decoded from ``detail`` in Python (the
view's nineteen ``json_extract`` calls a row cost several times more); a version 1 database, not
migrated as the store opens it read-only, through its view.

``follow`` reads new rows by ``seq``, the order they were committed, so a record another process
wrote late with an earlier time is not missed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from workflow_traces.core.record import Record, level_name
from workflow_traces.exporters.encode import record_from_dict
from workflow_traces.exporters.sqlite.schema import DETAIL_FIELDS
from workflow_traces.store.base import RunSummary, Store, summarize
from workflow_traces.store.query import KINDS, Filters

__all__ = ["PAGE_SIZE", "SQLiteStore"]

#: Rows per query while streaming a run.
PAGE_SIZE = 10_000
_RAW = (
    "seq, record_id, time_ns, levelno, message, run_id, parent_run_id, workflow_name, kind, detail"
)
#: Version 3's table adds the W3C ids.
_RAW_V3 = _RAW + ", trace_id, span_id"
_SUMMARY = (
    "SELECT run_id, MAX(parent_run_id), MAX(workflow_name), MIN(time_ns), MAX(time_ns), COUNT(*)"
    " FROM traces {} GROUP BY run_id"
)
_SUMMARY_SQL = {
    "all": _SUMMARY.format(""),
    "children": _SUMMARY.format(
        "WHERE run_id IN (SELECT DISTINCT run_id FROM traces"
        " WHERE parent_run_id = ? AND parent_run_id != '')"
    ),
    # One run: the count and times from the run index alone, then the names (which need the
    # table's rows) in a second pass SQLite makes without grouping.
    "one": (
        "SELECT ?, (SELECT MAX(parent_run_id) FROM traces WHERE run_id = ?),"
        " (SELECT MAX(workflow_name) FROM traces WHERE run_id = ?), MIN(time_ns), MAX(time_ns),"
        " COUNT(*) FROM traces WHERE run_id = ? HAVING COUNT(*) > 0"
    ),
}
# Workflow and job events (on the partial index of events), for the summaries.
_EVENTS = (
    "SELECT run_id, scope, event, time_ns, duration, job_name FROM trace_records"
    " WHERE kind = 'event' AND scope IN ('workflow', 'job') {} ORDER BY time_ns, seq"
)


#: How many values a version 2 (and later) ``detail`` array holds, and where its extras are.
_DETAIL_LEN = len(DETAIL_FIELDS)
_EXTRAS_AT = DETAIL_FIELDS.index("extras")


def _repaired(values: Any) -> list[Any]:
    """A ``detail`` that is not what the sink writes (a row edited by hand: not JSON, not an
    array, too short or too long, extras that are not an object) as the DETAIL_FIELDS values it
    has, the rest None: the row is read, rather than failing the whole read."""
    out = (list(values) if isinstance(values, list) else [])[:_DETAIL_LEN]
    out += [None] * (_DETAIL_LEN - len(out))
    if not isinstance(out[_EXTRAS_AT], dict):
        out[_EXTRAS_AT] = None
    return out


def _record_v2(row: tuple[Any, ...]) -> tuple[int, Record]:
    """(seq, Record) of a row of version 2's table (or version 3's, with the W3C ids last)."""
    seq, rid, time_ns, levelno, message, run_id, parent, workflow, kind, detail, *ids = row
    trace_id, span_id = ids or ("", "")
    try:
        values = orjson.loads(detail)
    except (orjson.JSONDecodeError, TypeError):
        values = None
    if (
        type(values) is not list
        or len(values) != _DETAIL_LEN
        or not (values[_EXTRAS_AT] is None or type(values[_EXTRAS_AT]) is dict)
    ):
        values = _repaired(values)
    (
        level,
        job,
        stage,
        scope,
        event,
        status,
        duration,
        is_err,
        filename,
        lineno,
        func_name,
        process,
        thread,
        host,
        logger,
        exc_type,
        exc_message,
        exc_traceback,
        extras,
    ) = values
    return seq, Record(
        time_ns,
        level or level_name(levelno),
        levelno,
        message,
        run_id,
        parent or None,
        workflow or None,
        job,
        stage,
        filename,
        lineno or None,
        func_name,
        process,
        thread,
        host,
        rid,
        bool(is_err),
        extras,
        exc_type,
        exc_message,
        exc_traceback,
        kind,
        scope,
        event,
        status,
        duration,
        logger,
        trace_id or None,
        span_id or None,
        256,
    )


class SQLiteStore(Store):
    """Reads the SQLite sink's database (read-only)."""

    def __init__(self, path: Path) -> None:
        from workflow_traces.exporters.sqlite.schema import COLUMNS

        self.path = path
        self._columns = ("seq", *COLUMNS)
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
        self._version: int | None = None
        self._have: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return f"sqlite:{self.path}"

    def _has_table(self) -> bool:
        # A database the sink created but has not written to yet holds no table: no runs.
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'trace_records'"
        ).fetchone()
        return row is not None

    def _raw(self) -> bool:
        """Whether the table is version 2's (read directly), else read through the view."""
        return self._version_at_least(2)

    def _version_at_least(self, version: int) -> bool:
        """Whether the schema is at ``version`` or newer (read again until it is: a sink may
        migrate the database while it is open here)."""
        if self._version is None or self._version < version:
            self._version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        return self._version >= version

    def _view_columns(self) -> tuple[str, ...]:
        """The columns of the view this database has: one of version 1 (read-only here, so
        not migrated) lacks the newer ones, which read back as None."""
        if self._have is None:
            have = {row[1] for row in self._conn.execute("PRAGMA table_info(trace_records)")}
            self._have = tuple(c for c in self._columns if c in have)
        return self._have

    def _trace_run_ids(self, trace_id: str) -> list[str]:
        if not self._has_table() or "trace_id" not in self._view_columns():
            return []
        if self._version_at_least(4):
            # trace_spans names the runs (schema version 4); each run's first record is the
            # first entry of its range of ix_traces_run.
            sql = (
                "SELECT run_id, (SELECT MIN(time_ns) FROM traces t WHERE t.run_id = s.run_id)"
                " FROM trace_spans s WHERE trace_id = ? AND trace_id != ''"
                " GROUP BY run_id ORDER BY 2, 1"
            )
        else:
            sql = (
                "SELECT run_id, MIN(time_ns) FROM traces WHERE trace_id = ? AND trace_id != ''"
                " GROUP BY run_id ORDER BY 2, 1"
            )
        rows = self._conn.execute(sql, (trace_id,)).fetchall()
        return [row[0] for row in rows]

    def _to_record(self, row: tuple[Any, ...]) -> tuple[int, Record]:
        if self._raw():
            return _record_v2(row)
        # Version 1 stored missing text as "": read it back as None.
        d = {k: (None if v == "" else v) for k, v in zip(self._view_columns(), row, strict=True)}
        seq = int(d.pop("seq") or 0)
        d["is_err"] = bool(d["is_err"])
        if d["lineno"] == 0:
            d["lineno"] = None
        if d["extras"] is not None:
            d["extras"] = orjson.loads(d["extras"])
        return seq, record_from_dict(d)

    def _select(self) -> str:
        if self._raw():
            raw = _RAW_V3 if (self._version or 0) >= 3 else _RAW
            return f"SELECT {raw} FROM traces"  # noqa: S608 - fixed text
        return f"SELECT {', '.join(self._view_columns())} FROM trace_records"  # noqa: S608

    def _where(self, filters: Filters) -> tuple[list[str], list[Any]]:
        """SQL conditions and their parameters for ``filters`` (values are always bound)."""
        raw = self._raw()
        conds: list[str] = []
        args: list[Any] = []
        job, stage = (
            ("json_extract(detail, '$[1]')", "json_extract(detail, '$[2]')")
            if raw
            else ("job_name", "stage_name")
        )
        if filters.levelno is not None:
            conds.append("levelno >= ?")
            args.append(filters.levelno)
        if filters.job is not None:
            conds.append(f"{job} = ?")
            args.append(filters.job)
        if filters.stage is not None:
            conds.append(f"{stage} = ?")
            args.append(filters.stage)
        if filters.since_ns is not None:
            conds.append("time_ns >= ?")
            args.append(filters.since_ns)
        if filters.kind is not None:
            # Written out, not bound: SQLite uses the partial index of events (WHERE kind =
            # 'event') only for that literal. Filters.make allows only KINDS here.
            assert filters.kind in KINDS
            conds.append(f"kind = '{filters.kind}'")
        if filters.text is not None:
            exc_type, exc_message = (
                ("json_extract(detail, '$[15]')", "json_extract(detail, '$[16]')")
                if raw
                else ("exc_type", "exc_message")
            )
            conds.append(
                f"(instr(message, ?) > 0 OR instr(COALESCE({exc_type}, ''), ?) > 0"
                f" OR instr(COALESCE({exc_message}, ''), ?) > 0)"
            )
            args.extend([filters.text] * 3)
        return conds, args

    def _position(self, run_id: str, record_id: str) -> tuple[int, int] | None:
        """(time_ns, seq) of a record of the run, for a cursor (on the record_id index)."""
        table = "traces" if self._raw() else "trace_records"
        row = self._conn.execute(
            f"SELECT time_ns, seq FROM {table} WHERE record_id = ? AND run_id = ?",  # noqa: S608
            (record_id, run_id),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def _iter(
        self, run_id: str, filters: Filters, after: str | None, limit: int | None
    ) -> Iterator[Record]:
        if not self._has_table():
            return
        position: tuple[int, int] | None = None
        if after is not None:
            position = self._position(run_id, after)
            if position is None:
                return  # a cursor of another run, or a record that is gone: nothing after it
        conds, args = self._where(filters)
        select = self._select()
        if filters.kind == "event" and self._raw():
            # A run's few events out of its many records: the partial index of events, sorted
            # after (SQLite would rather walk the run index for the order, every row of it).
            select += " INDEXED BY ix_traces_events"
        base = select + " WHERE " + " AND ".join(["run_id = ?", *conds])
        left = limit
        while left is None or left > 0:
            size = PAGE_SIZE if left is None else min(PAGE_SIZE, left)
            if position is None:
                sql, params = base, [run_id, *args]
            else:
                # The range on time_ns seeks the index; the OR only sorts out the ties.
                sql = base + " AND time_ns >= ? AND (time_ns > ? OR seq > ?)"
                params = [run_id, *args, position[0], position[0], position[1]]
            rows = self._conn.execute(
                sql + " ORDER BY time_ns, seq LIMIT ?", (*params, size)
            ).fetchall()
            to_record = _record_v2 if self._raw() else self._to_record
            seq = 0
            rec = None
            for row in rows:
                seq, rec = to_record(row)
                yield rec
            if len(rows) < size or rec is None:
                return
            position = (rec.time_ns, seq)
            if left is not None:
                left -= len(rows)

    def _last(self, run_id: str, filters: Filters, n: int) -> list[Record]:
        # Read backwards on the run index: the last n rows, not every row before them.
        if not self._has_table():
            return []
        conds, args = self._where(filters)
        sql = self._select() + " WHERE " + " AND ".join(["run_id = ?", *conds])
        rows = self._conn.execute(
            sql + " ORDER BY time_ns DESC, seq DESC LIMIT ?", (run_id, *args, n)
        ).fetchall()
        to_record = _record_v2 if self._raw() else self._to_record
        return [to_record(row)[1] for row in reversed(rows)]

    def _poller(self, run_id: str) -> Callable[[], list[Record]]:
        last = 0

        def poll() -> list[Record]:
            nonlocal last
            if not self._has_table():
                return []
            out: list[Record] = []
            # New rows by seq (the primary key): only rows written since the last look are read.
            rows = self._conn.execute(
                self._select() + " WHERE seq > ? AND +run_id = ? ORDER BY seq LIMIT ?",
                (last, run_id, PAGE_SIZE),
            ).fetchall()
            for row in rows:
                last, rec = self._to_record(row)
                out.append(rec)
            if not rows and last == 0:
                # Nothing of the run yet: start after the rows already there that are not.
                top = self._conn.execute("SELECT MAX(seq) FROM traces").fetchone()[0]
                first = self._conn.execute(
                    "SELECT MIN(seq) FROM traces WHERE run_id = ?", (run_id,)
                ).fetchone()[0]
                if top is not None and first is None:
                    last = int(top)
            return out

        return poll

    def _summary_rows(self, where: str = "all", args: tuple[Any, ...] = ()) -> list[RunSummary]:
        if not self._has_table():
            return []
        rows = self._conn.execute(_SUMMARY_SQL[where], args).fetchall()
        if not rows:
            return []
        ev_where, ev_args = "", ()
        if where == "one":
            ev_where, ev_args = "AND run_id = ?", args[:1]
        elif where == "children":
            ids = [r[0] for r in rows]
            ev_where = f"AND run_id IN ({', '.join('?' for _ in ids)})"
            ev_args = tuple(ids)
        wf: dict[str, list[tuple[str, int, float | None]]] = {}
        jobs: dict[str, list[tuple[str, int, float | None, str | None]]] = {}
        for run_id, scope, event, time_ns, duration, job in self._conn.execute(
            _EVENTS.format(ev_where), ev_args
        ):
            if scope == "workflow":
                wf.setdefault(run_id, []).append((event, time_ns, duration))
            else:
                jobs.setdefault(run_id, []).append((event, time_ns, duration, job))
        return [
            summarize(
                run_id,
                parent or None,
                workflow or None,
                first,
                last,
                count,
                wf.get(run_id, []),
                jobs.get(run_id, []),
            )
            for run_id, parent, workflow, first, last, count in rows
        ]

    def _summaries(self) -> list[RunSummary]:
        return self._summary_rows()

    def _children(self, run_id: str) -> list[RunSummary]:
        return self._summary_rows("children", (run_id,))

    def _summary(self, run_id: str) -> RunSummary | None:
        rows = self._summary_rows("one", (run_id,) * 4)
        return rows[0] if rows else None

    def close(self) -> None:
        self._conn.close()
