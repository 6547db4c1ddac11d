"""Trace context on every record: a run is one trace, each workflow, job and stage scope a span,
the child of the scope around it; ids are W3C hex, made once per scope."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import orjson
import pytest
from trace_helpers import assert_w3c, spans
from workflow_traces.integrations.dag import Job, Stage, Workflow
from workflow_traces.integrations.plain import job, stage, workflow

from workflow_traces import MultiHandler, RunNotFoundError, Trace, get_trace, open_store
from workflow_traces.core.context import Scope, current_scope, reset_scope, set_scope
from workflow_traces.core.record import as_record


def _sqlite(path: Path) -> dict[str, object]:
    return {"trace_type": "sqlite", "path": str(path), "fail_silently": False}


def test_workflow_job_stage_are_spans_of_one_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with workflow("etl", run_id="run-1", **_sqlite(db)) as wf:
        wf.info("in workflow")
        with job("extract"):
            with stage("fetch") as st:
                st.info("in stage")
                get_trace().info("via get_trace")
            with stage("parse") as st2:
                st2.info("in second stage")
    run = open_store(db).get_run("run-1")
    for rec in run.records:
        assert_w3c(rec)
    assert len({r.trace_id for r in run.records}) == 1
    sp = spans(run.records)
    wf_span, job_span = sp[("workflow", "etl")], sp[("job", "extract")]
    fetch, parse = sp[("stage", "fetch")], sp[("stage", "parse")]
    assert wf_span.parent_span_id is None
    assert job_span.parent_span_id == wf_span.span_id
    assert fetch.parent_span_id == parse.parent_span_id == job_span.span_id
    assert len({wf_span.span_id, job_span.span_id, fetch.span_id, parse.span_id}) == 4
    by_message = {r.message: r for r in run.logs}
    assert by_message["in workflow"].span_id == wf_span.span_id
    assert by_message["in stage"].span_id == fetch.span_id
    assert by_message["via get_trace"].span_id == fetch.span_id
    assert by_message["in second stage"].span_id == parse.span_id
    # The end event carries its scope's span and parent too.
    ends = [r for r in run.events if r.event == "succeeded" and r.scope == "stage"]
    assert {(r.span_id, r.parent_span_id) for r in ends} == {
        (fetch.span_id, job_span.span_id),
        (parse.span_id, job_span.span_id),
    }
    # A span's rows: trace_spans names its runs (one row a span and run), then each run's
    # rows are a range of the run index. No query scans the table.
    span_rows = (
        "SELECT t.record_id FROM trace_spans s JOIN traces t"
        " ON t.run_id = s.run_id AND t.trace_id = s.trace_id AND t.span_id = s.span_id"
        " WHERE s.trace_id = ? AND s.span_id = ?"
    )
    conn = sqlite3.connect(db)
    try:
        n = len(conn.execute(span_rows, (fetch.trace_id, fetch.span_id)).fetchall())
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + span_rows, (fetch.trace_id, fetch.span_id)
        ).fetchall()
        listed = set(conn.execute("SELECT trace_id, span_id, run_id FROM trace_spans"))
        distinct = set(conn.execute("SELECT DISTINCT trace_id, span_id, run_id FROM traces"))
    finally:
        conn.close()
    assert n == 4  # started, two log lines, succeeded
    assert not any("SCAN" in str(row) for row in plan), plan
    assert any("ix_traces_run" in str(row) for row in plan), plan
    assert listed == distinct and len(listed) == 4  # the workflow, the job, two stages
    # The README's query gives the same rows.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    query = next(
        block.split("```", 1)[0]
        for block in readme.split("```sql\n")[1:]
        if "trace_spans" in block.split("```", 1)[0]
    )
    conn = sqlite3.connect(db)
    try:
        got = conn.execute(query, (fetch.trace_id, fetch.span_id)).fetchall()
    finally:
        conn.close()
    assert sorted(row[2] for row in got) == sorted(  # its third column is record_id
        r.record_id for r in run.records if r.span_id == fetch.span_id
    )


def test_a_nested_workflow_is_a_child_span_in_the_same_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    outer_wf = workflow("outer", run_id="outer-run", **_sqlite(db))
    with outer_wf, job("j"), workflow("inner", run_id="inner-run") as inner:
        inner.info("inside the inner workflow")
    store = open_store(db)
    outer, inner_run = store.get_run("outer-run"), store.get_run("inner-run")
    assert inner_run.parent_run_id == "outer-run"
    j = spans(outer.records)[("job", "j")]
    inner_span = spans(inner_run.records)[("workflow", "inner")]
    assert inner_span.trace_id == j.trace_id
    assert inner_span.parent_span_id == j.span_id
    # The store finds the run by its trace id: the root run, the child among its children.
    found = store.find_run_by_trace_id(j.trace_id.upper())
    assert found.run_id == "outer-run"
    assert [c.run_id for c in found.child_runs] == ["inner-run"]
    with pytest.raises(RunNotFoundError, match="trace_id"):
        store.find_run_by_trace_id("0" * 31 + "1")


def test_each_retry_attempt_is_a_span_of_its_own(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "ok"

    wf = Workflow("dag", [Job("j", [Stage("s", flaky, retries=2)])], extras=_sqlite(db))
    result = wf.run(run_id="dag-run")
    assert result.status == "succeeded"
    run = open_store(db).get_run("dag-run")
    started = [r for r in run.events if r.scope == "stage" and r.event == "started"]
    job_span = spans(run.records)[("job", "j")]
    assert len(started) == 3
    assert len({r.span_id for r in started}) == 3
    assert {r.parent_span_id for r in started} == {job_span.span_id}


def test_a_trace_outside_any_scope_has_a_span_of_its_own_and_stdlib_records_take_the_scope() -> (
    None
):
    trace = Trace("r", handler=MultiHandler("r"))
    a = as_record(trace._record(20, "a", False, None, 1, queue=False))
    b = as_record(trace._record(20, "b", False, None, 1, queue=False))
    assert_w3c(a)
    assert (a.trace_id, a.span_id) == (b.trace_id, b.span_id)
    other = Trace("r2", handler=MultiHandler("r2"))
    assert as_record(other._record(20, "c", False, None, 1, False)).trace_id != a.trace_id

    from workflow_traces.core.stdlib import log_record_values

    scope = Scope(None, None, None, None, None).child("wf", None, None, "r", None)
    token = set_scope(scope)
    try:
        assert current_scope().span_id == scope.span_id
        lr = logging.LogRecord("lib", logging.INFO, "/x.py", 1, "m", None, None)
        rec = as_record(log_record_values(lr, "r", None, (None, None, None), None))
    finally:
        reset_scope(token)
    assert (rec.trace_id, rec.span_id) == (scope.trace_id, scope.span_id)


def test_the_file_sink_writes_the_ids_in_its_jsonl(tmp_path: Path) -> None:
    base = tmp_path / "files"
    with workflow("w", run_id="file-run", trace_type="file", path=str(base)) as wf:
        wf.info("hello")
    store = open_store(base)
    run = store.get_run("file-run")
    line = next(r for r in run.logs if r.message == "hello")
    assert_w3c(line)
    assert store.find_run_by_trace_id(line.trace_id).run_id == "file-run"
    raw = b"".join(p.read_bytes() for p in base.rglob("*.jsonl"))
    header = orjson.loads(raw.splitlines()[0])
    assert {"trace_id", "span_id"} <= set(header["fields"])
    assert line.trace_id.encode() in raw and line.span_id.encode() in raw


def test_get_trace_outside_a_scope_stamps_its_own_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    trace = get_trace("plain-run", extras=_sqlite(db))
    trace.info("one")
    trace.info("two")
    trace.close()
    run = open_store(db).get_run("plain-run")
    assert len({(r.trace_id, r.span_id) for r in run.records}) == 1
    assert_w3c(run.records[0])


def test_the_record_stays_within_the_size_cpython_builds_as_one_tuple() -> None:
    # CPython (3.11+) compiles a tuple literal of more than 30 values as a list turned into a
    # tuple: that tripled the hot path's build cost (benchmarks/ab_trace_context.py). The trace
    # ids took two of the last free places; an event's parent span travels in its extras.
    import dis

    from workflow_traces.core.record import Record

    assert len(Record._fields) <= 30
    call = Trace.info  # type: ignore[attr-defined]
    ops = {i.opname for i in dis.get_instructions(call)}
    assert "BUILD_TUPLE" in ops and "LIST_TO_TUPLE" not in ops
