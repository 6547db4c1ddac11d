"""Filtered, paged, streamed reads: every store answers iter_records like a filter over the
run's records would, pages by cursor without losing or repeating a record, and follows a run
while it is written until it ends."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from read_helpers import Places
from sample_runs import XSS_MESSAGE, live_run, plain_run

from workflow_traces import ConfigError, get_trace, open_store
from workflow_traces.store.query import Filters
from workflow_traces.store.sqlite import SQLiteStore

pytestmark = pytest.mark.network

QUERIES: list[dict[str, Any]] = [
    {},
    {"level": "WARNING"},
    {"level": 40},
    {"job": "extract"},
    {"stage": "fetch"},
    {"job": "transform", "level": "warning"},
    {"text": "row"},
    {"text": "ZeroDivisionError"},
    {"text": "<script>"},
    {"kind": "event"},
    {"kind": "log", "job": "load"},
    {"since": timedelta(hours=1)},
    {"since": "1d"},
    {"stage": "no-such-stage"},
]


def _ids(records: Any) -> list[str]:
    return [r.record_id for r in records]


def test_iter_records_filters_like_the_reference_on_every_store(places: Places) -> None:
    plain_run(places.extras, lines=30)
    for name, location in places.locations.items():
        with open_store(location) as store:
            everything = list(store.iter_records("etl-1"))
            assert len(everything) == store.get_summary("etl-1").record_count, name
            assert len(set(_ids(everything))) == len(everything), name
            for query in QUERIES:
                expected = [r for r in everything if Filters.make(**query).matches(r)]
                got = list(store.iter_records("etl-1", **query))
                assert _ids(got) == _ids(expected), (name, query)
            assert any(r.message == XSS_MESSAGE for r in everything)
            for query in QUERIES[:8]:
                whole = _ids(store.iter_records("etl-1", **query))
                assert _ids(store.last_records("etl-1", 5, **query)) == whole[-5:], (name, query)
            assert store.last_records("etl-1", 0) == []
            assert list(store.iter_records("nope")) == []


def test_the_stores_give_the_same_records_in_the_same_order(places: Places) -> None:
    plain_run(places.extras, lines=30)
    reads = {}
    for name, location in places.locations.items():
        with open_store(location) as store:
            reads[name] = list(store.iter_records("etl-1"))
    # Elasticsearch keeps durations as ECS does, in whole nanoseconds (event.duration).
    same = {
        name: [
            r._replace(duration=None if r.duration is None else round(r.duration, 9)) for r in rs
        ]
        for name, rs in reads.items()
    }
    assert same["file"] == same["sqlite"] == same["es"]


@pytest.mark.parametrize("page", [1, 7, 5000])
def test_paging_by_cursor_gives_every_record_once(places: Places, page: int) -> None:
    plain_run(places.extras, lines=40)
    for name, location in places.locations.items():
        for query in ({}, {"level": "DEBUG", "job": "extract"}, {"text": "row"}):
            with open_store(location) as store:
                whole = _ids(store.iter_records("etl-1", **query))
                got: list[str] = []
                cursor = None
                while True:
                    chunk = _ids(store.iter_records("etl-1", after=cursor, limit=page, **query))
                    assert len(chunk) <= page
                    got.extend(chunk)
                    if len(chunk) < page:
                        break
                    cursor = chunk[-1]
            assert got == whole, (name, query, page)
            # A fresh store (no remembered offsets) resumes from the same cursor as well.
            if len(whole) > 3:
                with open_store(location) as fresh:
                    rest = _ids(fresh.iter_records("etl-1", after=whole[2], **query))
                assert rest == whole[3:], (name, query)


def test_bad_read_arguments_are_one_clear_error(places: Places) -> None:
    plain_run(places.extras)
    with open_store(places.db) as store:
        with pytest.raises(ConfigError, match=r"level: expected one of DEBUG.*got 'LOUD'"):
            store.iter_records("etl-1", level="LOUD")
        with pytest.raises(ConfigError, match=r"since: expected .* got 'yesterday'"):
            store.iter_records("etl-1", since="yesterday")
        with pytest.raises(ConfigError, match="kind: expected one of log, event"):
            store.iter_records("etl-1", kind="metric")
        with pytest.raises(ConfigError, match="limit: expected a whole number"):
            store.iter_records("etl-1", limit=-1)
        with pytest.raises(ConfigError, match="status: expected one of succeeded, failed"):
            store.list_runs(status="SUCCEEDED")


def test_sqlite_reads_use_the_run_index_and_bind_every_value(places: Places) -> None:
    plain_run(places.extras)
    store = SQLiteStore(places.db)
    conds, args = store._where(Filters.make(level="INFO", job="x'; DROP TABLE traces; --"))
    assert "DROP" not in " ".join(conds) and "x'; DROP TABLE traces; --" in args
    sql = store._select() + " WHERE run_id = ? AND " + " AND ".join(conds)
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN " + sql + " ORDER BY time_ns, seq LIMIT 10", ("etl-1", *args)
    ).fetchall()
    assert any("ix_traces_run" in row[-1] for row in plan), plan
    assert not any("TEMP B-TREE" in row[-1] for row in plan), plan  # no sort: the index's order
    store.close()
    # The table is still there after the "injection".
    with sqlite3.connect(places.db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM traces").fetchone()[0] > 0


@pytest.mark.parametrize("name", ["file", "sqlite", "es"])
def test_follow_yields_records_as_they_land_and_ends_with_the_run(
    places: Places, name: str
) -> None:
    go, done = threading.Event(), threading.Event()
    writer = threading.Thread(target=live_run, args=(places.extras, "live-1", go, done))
    writer.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 10
        while not (places.files.exists() and places.db.exists()) and time.monotonic() < deadline:
            time.sleep(0.01)
        with open_store(places.locations[name]) as store:
            for rec in store.follow("live-1", poll_interval=0.05):
                seen.append(rec.record_id)
                if rec.message.startswith("tick "):
                    number = int(rec.message.split()[1])
                    # The next line is logged only once this one was read: a live follow.
                    (go if number < 3 else done).set()
    finally:
        done.set()
        writer.join(10)
    with open_store(places.locations[name]) as store:
        records = list(store.iter_records("live-1"))
    assert sorted(seen) == sorted(_ids(records))  # every record, once, by id
    assert [r.message for r in records if r.message.startswith("tick")] == [
        "tick 0",
        "tick 1",
        "tick 2",
        "tick 3",
    ]
    assert records[-1].kind == "event" and records[-1].scope == "workflow"


def test_follow_filters_and_stop(places: Places) -> None:
    plain_run(places.extras)
    for location in places.locations.values():
        with open_store(location) as store:
            got = [r.record_id for r in store.follow("etl-1", level="WARNING", poll_interval=0.01)]
            assert got == _ids(store.iter_records("etl-1", level="WARNING"))
            # A run that never ends: stop() ends the follow.
            calls: list[int] = []

            def stop(calls: list[int] = calls) -> bool:
                calls.append(1)
                return len(calls) > 2

            assert list(store.follow("not-yet", stop=stop, poll_interval=0.01)) == []
            assert len(calls) == 3


def test_a_run_with_only_job_events_gets_its_status_from_them(places: Places) -> None:
    # A Prefect subflow's shape: job events, no workflow events, a parent run id.
    for run_id, outcome in (("sub-ok", "succeeded"), ("sub-bad", "failed"), ("sub-open", None)):
        trace = get_trace(run_id, "parent-x", extras={**places.extras, "workflow_name": "flow"})
        trace.event("job", "started", name="subflow")
        trace.info("inside")
        if outcome is not None:
            trace.event("job", outcome, name="subflow", duration=0.5)
        trace.close()
    for name, location in places.locations.items():
        with open_store(location) as store:
            by_id = {s.run_id: s for s in store.list_runs()}
            assert by_id["sub-ok"].status == "succeeded", name
            assert by_id["sub-bad"].status == "failed", name
            assert by_id["sub-open"].status == "unfinished", name
            assert by_id["sub-ok"].duration is not None and by_id["sub-ok"].duration >= 0
            assert by_id["sub-open"].duration is None
            assert store.get_summary("sub-bad") == by_id["sub-bad"]
            assert [c.run_id for c in store.child_runs("parent-x")] == [
                "sub-ok",
                "sub-bad",
                "sub-open",
            ]
            assert store.run_tree("sub-bad").status == "failed"
            assert {s.run_id for s in store.list_runs(roots=True)}.isdisjoint({"sub-ok"})


def test_the_tree_holds_child_runs_where_they_ran(places: Places) -> None:
    plain_run(places.extras)
    for name, location in places.locations.items():
        with open_store(location) as store:
            tree = store.run_tree("etl-1")
            clean = tree.find("clean", "stage")
            assert clean is not None, name
            runs = [n for n in clean.children if n.kind == "run"]
            assert [n.run_id for n in runs] == ["etl-1-child"], name
            child = runs[0]
            assert child.status == "succeeded" and child.duration is not None
            assert child.find("lookup", "job") is not None
            fetches = tree.find_all("fetch", "stage")
            assert [(n.attempt, n.status) for n in fetches] == [(1, "failed"), (2, "succeeded")]
            assert tree.find("validate", "stage").status == "failed"  # type: ignore[union-attr]
            assert tree.status == "succeeded"
            assert [n.name for n in tree.children] == ["extract", "transform", "load"]
            assert tree.records == [] and clean.records == []  # built from events only
            # Nothing else of the parent's tree holds the child.
            assert sum(1 for n in tree.walk() if n.kind == "run") == 1


def test_a_database_file_the_sink_just_created_reads_as_empty_then_fills(
    places: Places,
) -> None:
    places.db.touch()  # what a reader can meet between the sink's open and its first write
    with open_store(places.db) as store:
        assert store.list_runs() == []
        assert list(store.iter_records("etl-1")) == []
        plain_run(places.extras)
        assert [s.run_id for s in store.list_runs(roots=True)] == ["etl-1"]
        assert store.get_summary("etl-1").status == "succeeded"


def test_a_kept_file_summary_follows_the_file_as_it_grows(places: Places) -> None:
    trace = get_trace("growing", extras={**places.extras})
    trace.info("one")
    trace.flush()
    with open_store(places.files) as store:
        assert store.get_summary("growing").record_count == 1
        assert store.get_summary("growing").record_count == 1  # kept: the file is the same
        trace.info("two")
        trace.flush()
        assert store.get_summary("growing").record_count == 2
    trace.close()
