"""The SQLite sink's schema: table ``traces``, its indexes, the view ``trace_records``, and the
migrations between versions (the version lives in ``PRAGMA user_version``).

Version 4 finds a trace's runs through table ``trace_spans`` (one row for each trace id, span
id and run id written; the sink adds a row the first time it writes one) instead of an index on
every row's ``trace_id`` and ``span_id``: that index cost SQLite about a fifth of its work a row
(measured: 0.4 of 2.1 µs), on the sink's worker. A trace's or a span's rows are then found
through ``ix_traces_run``: ``trace_spans`` gives the runs, each run's rows are one index range.

Version 3 adds the W3C ``trace_id`` and ``span_id`` columns.

Version 2 binds nine columns a row. The columns are what the store's queries filter and sort on, and
the record's other fields travel together as one JSON array in ``detail``. Binding a value costs
the sink's worker the GIL, and nine columns cost about a third less than version 1's seventeen.
The view gives every field back by name.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "COLUMNS",
    "DETAIL_FIELDS",
    "INSERT_COLUMNS",
    "SCHEMA_VERSION",
    "SPAN_COLUMNS",
    "migrate",
]

SCHEMA_VERSION = 4

#: Columns written per row, in order.
INSERT_COLUMNS = (
    "record_id",
    "time_ns",
    "levelno",
    "message",
    "run_id",
    "parent_run_id",
    "workflow_name",
    "kind",
    "trace_id",
    "span_id",
    "detail",
)
#: The fields of the JSON array in ``detail``, in order.
DETAIL_FIELDS = (
    "level",
    "job_name",
    "stage_name",
    "scope",
    "event",
    "status",
    "duration",
    "is_err",
    "filename",
    "lineno",
    "func_name",
    "process",
    "thread",
    "host",
    "logger",
    "exc_type",
    "exc_message",
    "exc_traceback",
    "extras",
)
#: Every column a reader selects from ``trace_records``: the record's fields.
COLUMNS = INSERT_COLUMNS[:-1] + DETAIL_FIELDS

# -- version 1 (kept to migrate from, and to build a version-1 database in tests) ------------------
# Version 1's detail array held these, in this order: version 2 appends them after the fields
# that were version 1's columns, so a version-1 array is the tail of a version-2 one.
_V1_DETAIL_FIELDS = DETAIL_FIELDS[8:]
assert _V1_DETAIL_FIELDS[0] == "filename" and len(_V1_DETAIL_FIELDS) == 11
_V1_DETAIL = ",\n".join(
    f"            json_extract(detail, '$[{i}]') AS {name}"
    for i, name in enumerate(_V1_DETAIL_FIELDS)
)

_V1: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS traces (
        seq INTEGER PRIMARY KEY,
        record_id TEXT NOT NULL UNIQUE,
        time_ns INTEGER NOT NULL,
        level TEXT NOT NULL,
        levelno INTEGER NOT NULL,
        message TEXT NOT NULL,
        run_id TEXT NOT NULL,
        parent_run_id TEXT,
        workflow_name TEXT,
        job_name TEXT,
        stage_name TEXT,
        kind TEXT NOT NULL DEFAULT 'log',
        scope TEXT,
        event TEXT,
        status TEXT,
        duration REAL,
        is_err INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '[]'
    )""",
    "CREATE INDEX IF NOT EXISTS ix_traces_run ON traces (run_id, time_ns)",
    # Partial indexes: most rows have no parent and are not events, and cost nothing here.
    "CREATE INDEX IF NOT EXISTS ix_traces_parent ON traces (parent_run_id)"
    " WHERE parent_run_id != ''",
    "CREATE INDEX IF NOT EXISTS ix_traces_events ON traces (run_id, scope) WHERE kind = 'event'",
    # Every field by name, with an ISO timestamp, for readers and people. A view rather than
    # generated columns: SQLite computes generated columns on every INSERT, which tripled
    # the cost of a row.
    """CREATE VIEW IF NOT EXISTS trace_records AS SELECT
        seq,
        strftime('%Y-%m-%dT%H:%M:%S', time_ns / 1000000000, 'unixepoch')
            || printf('.%06d+00:00', time_ns / 1000 % 1000000) AS timestamp,
        record_id, time_ns, level, levelno, message, run_id,
        NULLIF(parent_run_id, '') AS parent_run_id,
        NULLIF(workflow_name, '') AS workflow_name,
        NULLIF(job_name, '') AS job_name,
        NULLIF(stage_name, '') AS stage_name,
        kind,
        NULLIF(scope, '') AS scope,
        NULLIF(event, '') AS event,
        NULLIF(status, '') AS status,
        duration, is_err,
"""
    + _V1_DETAIL
    + """
    FROM traces""",
)


# -- version 2 -----------------------------------------------------------------------------------
def _detail_columns(fields: tuple[str, ...]) -> str:
    return ",\n".join(
        f"            json_extract(detail, '$[{i}]') AS {name}" for i, name in enumerate(fields)
    )


_DETAIL = _detail_columns(DETAIL_FIELDS)
_TABLE_V2 = """CREATE TABLE {name} (
            seq INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL UNIQUE,
            time_ns INTEGER NOT NULL,
            levelno INTEGER NOT NULL,
            message TEXT NOT NULL,
            run_id TEXT NOT NULL,
            parent_run_id TEXT NOT NULL DEFAULT '',
            workflow_name TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL DEFAULT 'log',
            detail TEXT NOT NULL DEFAULT '[]'
        )"""
# Version 1's columns that move into detail, as JSON values in version 2's order ("" was how
# version 1 stored missing text), then version 1's own detail array, element by element.
_V1_TO_DETAIL = (
    "json_array(level, NULLIF(job_name, ''), NULLIF(stage_name, ''), NULLIF(scope, ''),"
    " NULLIF(event, ''), NULLIF(status, ''), duration,"
    " CASE WHEN is_err THEN json('true') ELSE json('false') END, "
    + ", ".join(f"json_extract(detail, '$[{i}]')" for i in range(len(_V1_DETAIL_FIELDS)))
    + ")"
)
_V2: tuple[str, ...] = (
    _TABLE_V2.format(name="traces_v2"),
    "INSERT INTO traces_v2 (seq, record_id, time_ns, levelno, message, run_id, parent_run_id,"  # noqa: S608 - fixed text
    " workflow_name, kind, detail) SELECT seq, record_id, time_ns, levelno, message, run_id,"
    " COALESCE(parent_run_id, ''), COALESCE(workflow_name, ''), kind, "
    + _V1_TO_DETAIL
    + " FROM traces",
    "DROP VIEW IF EXISTS trace_records",
    "DROP TABLE traces",
    "ALTER TABLE traces_v2 RENAME TO traces",
    # The store's queries: a run's records in time order, a run's children, workflow events.
    # Partial indexes: most rows have no parent and are not events, and cost nothing here.
    "CREATE INDEX ix_traces_run ON traces (run_id, time_ns)",
    "CREATE INDEX ix_traces_parent ON traces (parent_run_id) WHERE parent_run_id != ''",
    "CREATE INDEX ix_traces_events ON traces (run_id) WHERE kind = 'event'",
    # Every field by name, with an ISO timestamp, for readers and people. A view rather than
    # generated columns: SQLite computes generated columns on every INSERT.
    """CREATE VIEW trace_records AS SELECT
            seq,
            strftime('%Y-%m-%dT%H:%M:%S', time_ns / 1000000000, 'unixepoch')
                || printf('.%06d+00:00', time_ns / 1000 % 1000000) AS timestamp,
            record_id, time_ns, levelno, message, run_id,
            NULLIF(parent_run_id, '') AS parent_run_id,
            NULLIF(workflow_name, '') AS workflow_name,
            kind,
"""
    + _DETAIL
    + """
        FROM traces""",
)

# -- version 3 -----------------------------------------------------------------------------------
_V3: tuple[str, ...] = (
    "ALTER TABLE traces ADD COLUMN trace_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE traces ADD COLUMN span_id TEXT NOT NULL DEFAULT ''",
    # A trace's rows, and a span's within it. Partial: rows written before version 3 have none.
    "CREATE INDEX ix_traces_trace ON traces (trace_id, span_id) WHERE trace_id != ''",
    "DROP VIEW IF EXISTS trace_records",
    """CREATE VIEW trace_records AS SELECT
            seq,
            strftime('%Y-%m-%dT%H:%M:%S', time_ns / 1000000000, 'unixepoch')
                || printf('.%06d+00:00', time_ns / 1000 % 1000000) AS timestamp,
            record_id, time_ns, levelno, message, run_id,
            NULLIF(parent_run_id, '') AS parent_run_id,
            NULLIF(workflow_name, '') AS workflow_name,
            kind,
            NULLIF(trace_id, '') AS trace_id,
            NULLIF(span_id, '') AS span_id,
"""
    + _detail_columns(DETAIL_FIELDS)
    + """
        FROM traces""",
)

# -- version 4 -----------------------------------------------------------------------------------
#: The columns of ``trace_spans``, in the order the sink binds them.
SPAN_COLUMNS = ("trace_id", "span_id", "run_id")
_SPAN_LIST = ", ".join(SPAN_COLUMNS)
_V4: tuple[str, ...] = (
    # WITHOUT ROWID: the key is the row; a trace's runs are one range of it.
    "CREATE TABLE trace_spans ("
    + "".join(f"{name} TEXT NOT NULL, " for name in SPAN_COLUMNS)
    + f"PRIMARY KEY ({_SPAN_LIST})) WITHOUT ROWID",
    f"INSERT OR IGNORE INTO trace_spans ({_SPAN_LIST})"  # noqa: S608 - our column names only
    f" SELECT DISTINCT {_SPAN_LIST} FROM traces WHERE trace_id != ''",
    "DROP INDEX IF EXISTS ix_traces_trace",
)

_MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4}


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(traces)")}


def _check_layout(conn: sqlite3.Connection, version: int) -> None:
    """Refuse, with one clear error, a ``traces`` table that lacks columns its version has (a
    file from an unreleased build, or one edited by hand): migrating it would fail midway."""
    if version < 1:
        return
    scratch = sqlite3.connect(":memory:")
    try:
        for target in range(1, version + 1):
            for statement in _MIGRATIONS[target]:
                scratch.execute(statement)
        expected = _columns(scratch)
    finally:
        scratch.close()
    missing = sorted(expected - _columns(conn))
    if missing:
        raise sqlite3.DatabaseError(
            f"table traces: marked schema version {version}, but it lacks the columns "
            f"{', '.join(missing)} that version has, so it cannot be migrated to version "
            f"{SCHEMA_VERSION}; move the file aside or give the sink another path"
        )


def migrate(conn: sqlite3.Connection, to: int = SCHEMA_VERSION) -> None:
    """Bring the database to version ``to``, inside one write transaction, so several processes
    can open it at once (one migrates, the others find it done). A database newer than ``to``
    is left as it is."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version >= to:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        _check_layout(conn, version)
        for target in range(version + 1, to + 1):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={max(version, to)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
