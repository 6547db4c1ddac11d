"""The SQLite sink's two statement forms (exporters/sqlite/rows.py) write the same rows.

A stretch of records of one scope is written with its context bound once a statement (and its
detail, when every row has the same); scopes that change every few records go row by row. Each
test writes through the real exporter into a real SQLite file and reads every column back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from workflow_traces.core import record as _record
from workflow_traces.core.record import Record, RecordValues
from workflow_traces.exporters.sqlite.handler import SQLiteExporter
from workflow_traces.exporters.sqlite.rows import MIN_SHARED, Statements, flat_rows
from workflow_traces.exporters.sqlite.schema import COLUMNS, SPAN_COLUMNS


def _rec(i: int, *, span: str = "s1", line: int = 10, **fields: Any) -> RecordValues:
    """A queued record as the trace path makes it: a plain tuple, the record id a counter."""
    values: dict[str, Any] = {
        "time_ns": 1_700_000_000_000_000_000 + i,
        "level": "INFO",
        "levelno": 20,
        "message": f"m{i}",
        "run_id": "run-1",
        "parent_run_id": None,
        "workflow_name": "wf",
        "job_name": "job",
        "stage_name": None,
        "filename": "/src/flow.py",
        "lineno": line,
        "func_name": "step",
        "process": 7,
        "thread": 9,
        "host": "h",
        "record_id": 10**15 + i,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": span,
    }
    values.update(fields)
    return tuple(Record(**values))


def _rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        cols = ", ".join(COLUMNS)
        return conn.execute(f"SELECT {cols} FROM trace_records ORDER BY seq").fetchall()
    finally:
        conn.close()


def _write(tmp_path: Path, name: str, batch: list[RecordValues], **kw: Any) -> list[Any]:
    exporter = SQLiteExporter(tmp_path / f"{name}.db", **kw)
    try:
        exporter.export(batch)
    finally:
        exporter.shutdown()
    return _rows(tmp_path / f"{name}.db")


def _row_by_row(tmp_path: Path, batch: list[RecordValues]) -> list[Any]:
    """The reference: every row bound column by column."""
    db = tmp_path / "reference.db"
    exporter = SQLiteExporter(db)
    exporter.export(batch[:1])  # connects and makes the schema
    conn = exporter._conn
    assert conn is not None
    statements = Statements(10_000, 32_766)
    for sql, params in statements.rows(flat_rows(batch[1:])):
        conn.execute(sql, params)
    exporter.shutdown()
    return _rows(db)


def _forms(statements: list[tuple[str, list[Any]]]) -> list[str]:
    """The form of each statement that writes rows of traces (not trace_spans)."""
    return ["shared" if "SELECT" in sql else "rows" for sql, _ in _row_writes(statements)]


def _row_writes(statements: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    return [(sql, p) for sql, p in statements if "INTO traces " in sql]


def _spans_written(statements: list[tuple[str, list[Any]]]) -> list[tuple[str, ...]]:
    """The (trace_id, span_id, run_id) rows the statements add to trace_spans."""
    rows: list[tuple[str, ...]] = []
    for sql, params in statements:
        if "INTO trace_spans " in sql:
            width = len(SPAN_COLUMNS)
            rows.extend(tuple(params[i : i + width]) for i in range(0, len(params), width))
    return rows


def test_one_scope_with_one_call_site_binds_context_and_detail_once(tmp_path: Path) -> None:
    batch = [_rec(i) for i in range(256)]  # a power of two: one statement
    statements = Statements(1600, 32_766).of(batch)
    assert _forms(statements) == ["shared"]
    (sql, params) = _row_writes(statements)[0]
    assert sql.count("(?,?,?,?)") == 256  # four values a row: id, time, level number, message
    assert len(params) == 8 + 4 * 256
    assert _write(tmp_path, "shared", batch) == _row_by_row(tmp_path, batch)


def test_rows_with_different_details_bind_theirs(tmp_path: Path) -> None:
    batch = [
        _rec(i, line=i % 7, thread=i % 3, extras={"i": i} if i % 5 else None) for i in range(200)
    ]
    statements = Statements(1600, 32_766).of(batch)
    assert set(_forms(statements)) == {"shared"}
    assert sum(sql.count("(?,?,?,?,?)") for sql, _ in _row_writes(statements)) == 200
    got = _write(tmp_path, "details", batch)
    assert got == _row_by_row(tmp_path, batch)
    assert [r[COLUMNS.index("lineno")] for r in got] == [i % 7 for i in range(200)]


def test_long_stretches_of_several_scopes_are_shared_statements_in_order(tmp_path: Path) -> None:
    spans = ["a"] * 100 + ["b"] * 80 + ["a"] * 70
    batch = [_rec(i, span=s) for i, s in enumerate(spans)]
    statements = Statements(1600, 32_766).of(batch)
    assert _forms(statements).count("shared") == len(_row_writes(statements)) >= 3
    got = _write(tmp_path, "stretches", batch)
    assert got == _row_by_row(tmp_path, batch)
    assert [r[COLUMNS.index("span_id")] for r in got] == spans


def test_scopes_changing_every_few_records_go_row_by_row(tmp_path: Path) -> None:
    batch = [_rec(i, span=f"s{i // 3}", kind="event" if i % 3 == 0 else "log") for i in range(90)]
    assert set(_forms(Statements(1600, 32_766).of(batch))) == {"rows"}
    assert _write(tmp_path, "mixed", batch) == _row_by_row(tmp_path, batch)


def test_whole_record_ids_and_missing_context_are_written_as_row_by_row_does(
    tmp_path: Path,
) -> None:
    """Records from other ways in carry whole ids (text); missing ids are stored as "" and read
    back as NULL, in both forms."""
    batch = [
        _rec(i, workflow_name=None, trace_id=None, span_id=None, record_id=f"whole-{i}")
        if i % 2
        else _rec(i, workflow_name=None, trace_id=None, span_id=None)
        for i in range(MIN_SHARED * 2)
    ]
    assert set(_forms(Statements(1600, 32_766).of(batch))) == {"shared"}
    got = _write(tmp_path, "ids", batch)
    assert got == _row_by_row(tmp_path, batch)
    ids = [r[COLUMNS.index("record_id")] for r in got]
    assert ids[1] == "whole-1" and ids[0] == f"{_record._id_prefix}{10**15}"
    assert {r[COLUMNS.index("trace_id")] for r in got} == {None}


@pytest.mark.parametrize("max_params", [999, 100])
def test_shared_statements_keep_within_sqlites_parameter_limit(
    tmp_path: Path, max_params: int
) -> None:
    statements = Statements(1600, max_params)
    for n in (1, 2, 3, 64, 255, 1000):
        for batch in ([_rec(i) for i in range(n)], [_rec(i, line=i) for i in range(n)]):
            written = statements.of(batch)
            assert all(len(p) <= max_params for _, p in written)
            assert sum(sql.count("(?") for sql, _ in _row_writes(written)) == n  # each row once


def test_text_that_utf8_cannot_hold_is_escaped_in_the_shared_form(tmp_path: Path) -> None:
    batch = [_rec(i, message="bad \ud800 text" if i == 5 else f"m{i}") for i in range(100)]
    assert set(_forms(Statements(1600, 32_766).of(batch))) == {"shared"}
    got = _write(tmp_path, "surrogates", batch)
    messages = [r[COLUMNS.index("message")] for r in got]
    assert len(messages) == 100 and messages[4] == "m4"
    assert "\ud800" not in messages[5] and messages[5].startswith("bad ")


def test_the_write_ahead_log_is_copied_on_a_thread_of_its_own(tmp_path: Path) -> None:
    """The worker nudges the checkpointer every CHECKPOINT_ROWS rows; the checkpointer copies
    the log into the database file while the worker goes on, and stops when the sink does."""
    import threading
    import time

    from workflow_traces.exporters.sqlite.checkpoint import BACKSTOP_PAGES, CHECKPOINT_ROWS

    db = tmp_path / "t.db"
    exporter = SQLiteExporter(db)
    n = 1600 * (CHECKPOINT_ROWS // 1600 + 2)
    for start in range(0, n, 1600):
        exporter.export([_rec(i) for i in range(start, start + 1600)])
    conn = exporter._conn
    checkpointer = exporter._checkpointer
    assert conn is not None and checkpointer is not None
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    deadline = time.monotonic() + 30
    while checkpointer.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checkpointer.runs >= 1
    # The database file itself now holds the rows' pages (before, only the log did).
    assert db.stat().st_size > 1_000_000
    exporter.shutdown()
    assert not [t for t in threading.enumerate() if t.name.startswith("workflow-traces:checkpoint")]
    assert not (tmp_path / "t.db-wal").exists()  # the last connection's close took the rest
    assert len(_rows(db)) == n


class _Unequal:
    """An extras value whose == raises, as a numpy array's truth value does."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("the truth value of an array is ambiguous")

    __hash__ = object.__hash__


def test_extras_whose_comparison_raises_are_stored_safely(tmp_path: Path) -> None:
    batch = [_rec(i, extras={"value": _Unequal()}) for i in range(100)]
    got = _write(tmp_path, "unequal", batch)
    assert len(got) == 100
    assert all("_Unequal object" in r[COLUMNS.index("extras")] for r in got)  # its repr


def test_the_checkpointer_never_makes_a_database_file(tmp_path: Path) -> None:
    """Nudged after the database was removed, the checkpointer does not create an empty file
    there (the writer makes it again, with its schema, on its next batch)."""
    from workflow_traces.exporters.sqlite.checkpoint import Checkpointer

    db = tmp_path / "gone.db"
    checkpointer = Checkpointer(db, busy_timeout=1.0)
    checkpointer.nudge()
    checkpointer.close(timeout=5)
    assert not db.exists()
    assert checkpointer.runs == 0


def test_a_new_scope_adds_its_trace_spans_row_once(tmp_path: Path) -> None:
    """The first batch of a (trace, span, run) adds its trace_spans row; later batches of it
    add none; after a failed write (forget) it is written again, and ignored as a duplicate."""
    statements = Statements(1600, 32_766)
    first = statements.of([_rec(i) for i in range(100)])
    trace = "0af7651916cd43dd8448eb211c80319c"
    assert _spans_written(first) == [(trace, "s1", "run-1")]
    assert _spans_written(statements.of([_rec(i) for i in range(100, 200)])) == []
    mixed = [_rec(i, span=f"s{i // 3}") for i in range(30)]  # row by row, ten spans, s1 known
    assert sorted(_spans_written(statements.of(mixed))) == sorted(
        {(trace, f"s{k}", "run-1") for k in range(10)} - {(trace, "s1", "run-1")}
    )
    statements.forget()
    assert _spans_written(statements.of([_rec(i) for i in range(10)])) == [(trace, "s1", "run-1")]
    # Records without a trace id have no row there.
    assert (
        _spans_written(statements.of([_rec(i, trace_id=None, span_id=None) for i in range(9)]))
        == []
    )

    db = tmp_path / "spans.db"
    exporter = SQLiteExporter(db)
    try:
        exporter.export([_rec(i) for i in range(100)])
        exporter.export([_rec(i, span="s2", run_id="run-2") for i in range(100, 300)])
        exporter.export([_rec(i, span="s2", run_id="run-2") for i in range(300, 400)])
    finally:
        exporter.shutdown()
    conn = sqlite3.connect(db)
    try:
        listed = sorted(conn.execute("SELECT trace_id, span_id, run_id FROM trace_spans"))
    finally:
        conn.close()
    assert listed == [(trace, "s1", "run-1"), (trace, "s2", "run-2")]


def test_a_failed_write_writes_its_trace_spans_rows_with_the_retry(tmp_path: Path) -> None:
    """A batch that fails (here: the table is locked by another connection, so the insert
    times out) is retried by the pipeline; the retry must add the trace_spans row the failed
    attempt did not."""
    db = tmp_path / "locked.db"
    exporter = SQLiteExporter(db)
    exporter.export([_rec(0, span="warm")])  # connects and makes the schema
    assert exporter._conn is not None
    exporter._conn.execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError):
            exporter.export([_rec(i) for i in range(1, 100)])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    exporter.export([_rec(i) for i in range(1, 100)])
    exporter.shutdown()
    conn = sqlite3.connect(db)
    try:
        spans = {r[0] for r in conn.execute("SELECT span_id FROM trace_spans")}
        count = conn.execute("SELECT COUNT(*) FROM traces").fetchone()[0]
    finally:
        conn.close()
    assert spans == {"warm", "s1"} and count == 100
