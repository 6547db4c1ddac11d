"""The SQLite schema: a version-1 database is migrated with every field kept, a version-3 one
gets its trace_spans, and the view gives every field by name. Real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from workflow_traces import SinkError, get_trace, open_store
from workflow_traces.exporters.sqlite.schema import COLUMNS, SCHEMA_VERSION, migrate

_V1_ROWS = [
    # A log line with stage names, extras and an exception.
    {
        "record_id": "p-1000000000000001",
        "time_ns": 1_700_000_000_123_456_000,
        "level": "ERROR",
        "levelno": 40,
        "message": "load failed",
        "run_id": "old-run",
        "parent_run_id": "",
        "workflow_name": "nightly",
        "job_name": "load",
        "stage_name": "write",
        "kind": "log",
        "scope": "",
        "event": "",
        "status": "",
        "duration": None,
        "is_err": 1,
        "detail": json.dumps(
            [
                "/srv/etl.py",
                42,
                "write",
                123,
                456,
                "host-a",
                "etl",
                "ValueError",
                "bad row",
                "Traceback (most recent call last): ...",
                {"rows": 3, "tags": ["a", "b"]},
            ]
        ),
    },
    # A workflow event with a duration and a parent run.
    {
        "record_id": "p-1000000000000002",
        "time_ns": 1_700_000_001_000_000_000,
        "level": "INFO",
        "levelno": 20,
        "message": "workflow 'nightly' succeeded in 1.000s",
        "run_id": "old-run",
        "parent_run_id": "parent-run",
        "workflow_name": "nightly",
        "job_name": "",
        "stage_name": "",
        "kind": "event",
        "scope": "workflow",
        "event": "succeeded",
        "status": "succeeded",
        "duration": 1.0,
        "is_err": 0,
        "detail": json.dumps([None, None, None, 123, 456, "host-a", None, None, None, None, None]),
    },
]


def _make_v1(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        migrate(conn, to=1)
        cols = list(_V1_ROWS[0])
        conn.executemany(
            f"INSERT INTO traces ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [tuple(row[c] for c in cols) for row in _V1_ROWS],
        )
    finally:
        conn.close()


def test_a_version_1_database_is_migrated_with_every_field_kept(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _make_v1(db)
    before = open_store(db).get_run("old-run").records  # the store reads version 1 too

    # The sink migrates the database when its worker first connects.
    trace = get_trace("new-run", extras={"trace_type": "sqlite", "path": str(db)})
    trace.info("after the migration")
    trace.close()

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        columns = [r[1] for r in conn.execute("PRAGMA table_info(traces)")]
        assert "job_name" not in columns and "detail" in columns
    finally:
        conn.close()

    store = open_store(db)
    after = store.get_run("old-run").records
    assert [r._asdict() for r in after] == [r._asdict() for r in before]
    first, event = after
    assert (first.level, first.job_name, first.stage_name, first.is_err) == (
        "ERROR",
        "load",
        "write",
        True,
    )
    assert (first.filename, first.lineno, first.func_name, first.logger) == (
        "/srv/etl.py",
        42,
        "write",
        "etl",
    )
    assert (first.exc_type, first.exc_message) == ("ValueError", "bad row")
    assert first.extras == {"rows": 3, "tags": ["a", "b"]}
    assert (event.kind, event.scope, event.event, event.status, event.duration) == (
        "event",
        "workflow",
        "succeeded",
        "succeeded",
        1.0,
    )
    assert event.parent_run_id == "parent-run" and event.job_name is None
    assert store.get_run("old-run").status == "succeeded"
    assert [r.message for r in store.get_run("new-run").records] == ["after the migration"]


def test_the_view_gives_every_record_field_by_name(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    trace = get_trace("view", extras={"trace_type": "sqlite", "path": str(db), "job_name": "j"})
    trace.event("workflow", "started", name="wf")
    trace.warning("careful")
    trace.close()
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM trace_records ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert set(COLUMNS) | {"seq", "timestamp"} == set(rows[0].keys())
    started, warning = rows
    assert (started["kind"], started["scope"], started["event"]) == ("event", "workflow", "started")
    assert (warning["level"], warning["job_name"], warning["stage_name"]) == ("WARNING", "j", None)
    assert warning["is_err"] == 0 and warning["parent_run_id"] is None
    assert warning["timestamp"].endswith("+00:00")


def test_a_new_database_gets_16k_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("CREATE TABLE unrelated (x)")  # fixes the default 4 KiB page size
    conn.close()
    for path in (tmp_path / "new.db", old):
        trace = get_trace("pages-1", extras={"trace_type": "sqlite", "path": str(path)})
        for i in range(100):
            trace.info(f"line {i}")
        trace.close()
        assert len(open_store(path).get_run("pages-1").records) == 100
    sizes = {}
    for path in (tmp_path / "new.db", old):
        conn = sqlite3.connect(path)
        sizes[path.name] = conn.execute("PRAGMA page_size").fetchone()[0]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    assert sizes == {"new.db": 16384, "old.db": 4096}


def test_a_version_1_file_of_another_layout_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    # An unreleased build once wrote version 1 with other columns (no "detail"): migrating it
    # would fail midway, so connecting names the missing columns and leaves the file untouched.
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE traces (seq INTEGER PRIMARY KEY, record_id TEXT, extras TEXT)")
    conn.execute("PRAGMA user_version=1")
    conn.close()
    trace = get_trace(
        "odd-1", extras={"trace_type": "sqlite", "path": str(path), "fail_silently": False}
    )
    trace.info("kept elsewhere")
    with pytest.raises(SinkError) as caught:
        trace.close()
    text = str(caught.value)
    assert "marked schema version 1, but it lacks the columns" in text
    assert "detail" in text and "move the file aside" in text
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert [r[1] for r in conn.execute("PRAGMA table_info(traces)")] == [
        "seq",
        "record_id",
        "extras",
    ]
    conn.close()


def test_a_version_3_database_gets_trace_spans_and_loses_the_trace_index(tmp_path: Path) -> None:
    """Version 4 lists each (trace, span, run) in trace_spans instead of indexing every row's
    trace and span ids; the migration fills it from the rows already there."""
    db = tmp_path / "v3.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        migrate(conn, to=3)
        rows = [
            (
                f"p-{i}",
                1_700_000_000_000_000_000 + i,
                20,
                f"m{i}",
                run,
                "",
                "wf",
                "log",
                json.dumps(["INFO", *[None] * 6, False, *[None] * 11]),
                trace,
                span,
            )
            for i, (run, trace, span) in enumerate(
                [
                    ("r1", "a" * 32, "1" * 16),
                    ("r1", "a" * 32, "1" * 16),
                    ("r1", "a" * 32, "2" * 16),
                    ("r2", "a" * 32, "3" * 16),
                    ("r3", "", ""),
                ]
            )
        ]
        conn.executemany(
            "INSERT INTO traces (record_id, time_ns, levelno, message, run_id, parent_run_id,"
            " workflow_name, kind, detail, trace_id, span_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    finally:
        conn.close()
    # The store reads version 3 as it is (read-only: it does not migrate).
    assert open_store(db).find_run_by_trace_id("a" * 32).run_id == "r1"
    assert open_store(db)._trace_run_ids("a" * 32) == ["r1", "r2"]

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        migrate(conn)
        spans = sorted(conn.execute("SELECT trace_id, span_id, run_id FROM trace_spans"))
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    assert version == 4
    assert spans == [
        ("a" * 32, "1" * 16, "r1"),
        ("a" * 32, "2" * 16, "r1"),
        ("a" * 32, "3" * 16, "r2"),
    ]
    assert "ix_traces_trace" not in indexes and "ix_traces_run" in indexes
    store = open_store(db)
    assert store.find_run_by_trace_id("A" * 32).run_id == "r1"  # the earliest run first
    assert store._trace_run_ids("a" * 32) == ["r1", "r2"]  # both runs of the trace, in order


def test_rows_edited_by_hand_read_as_the_values_they_have(tmp_path: Path) -> None:
    """A ``detail`` the sink would never write (not JSON, not an array, too short, too long,
    extras that are not an object) reads as what it holds, the rest None: the other rows of
    the run are not lost to one bad row."""
    db = tmp_path / "edited.db"
    trace = get_trace("edited", extras={"trace_type": "sqlite", "path": str(db)})
    trace.info("written by the sink")
    trace.close()
    good = json.loads(_only_detail(db))
    bad = [
        "not json",
        "[]",
        '{"an": "object"}',
        json.dumps([*good, "one too many"]),
        json.dumps([*good[:-1], "extras as text"]),
        json.dumps(good[:3]),
    ]
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for i, detail in enumerate(bad):
            conn.execute(
                "INSERT INTO traces (record_id, time_ns, levelno, message, run_id, kind, detail)"
                " VALUES (?, ?, 30, ?, 'edited', 'log', ?)",
                (f"hand-{i}", 1_900_000_000_000_000_000 + i, f"edited {i}", detail),
            )
    finally:
        conn.close()
    records = open_store(db).get_run("edited").records
    assert [r.message for r in records] == ["written by the sink"] + [
        f"edited {i}" for i in range(len(bad))
    ]
    edited = records[1:]
    # The level from the level number where the detail has none, else the detail's.
    assert [r.level for r in edited] == ["WARNING"] * 3 + ["INFO"] * 3
    assert all(r.extras is None for r in edited)
    assert edited[3].filename == records[0].filename  # the values it has are kept
    assert edited[5].filename is None and edited[5].thread is None  # past its three values


def _only_detail(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        (detail,) = conn.execute("SELECT detail FROM traces").fetchone()
    finally:
        conn.close()
    return str(detail)
