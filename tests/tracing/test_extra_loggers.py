"""TRACE_EXTRA_LOGGERS routes the named stdlib loggers' records emitted inside a traced scope to
that scope's sinks, stamped with its names and ids; records outside every scope, and our own
and the HTTP clients' loggers, are left alone. Counted by record id in a real SQLite store."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from trace_helpers import spans
from workflow_traces.integrations.dag import Job, Stage, Workflow
from workflow_traces.integrations.plain import job, stage, workflow

from workflow_traces import open_store
from workflow_traces.core.extra_loggers import ROUTER, parse_logger_names, route_extra_loggers


@pytest.fixture(autouse=True)
def _routed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_EXTRA_LOGGERS", "userlib, otherlib ,workflow_traces,httpx")
    logging.getLogger("userlib").setLevel(logging.DEBUG)


def test_names_are_parsed_and_excluded_loggers_never_routed() -> None:
    assert parse_logger_names(" a, b,,a ") == ["a", "b"]
    route_extra_loggers(["workflow_traces", "httpx.client", "urllib3"])
    for name in ("workflow_traces", "httpx", "httpx.client", "urllib3"):
        assert ROUTER not in logging.getLogger(name).handlers


def test_records_inside_scopes_are_routed_and_outside_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    lib = logging.getLogger("userlib.sub")
    with workflow("w", run_id="xl-run", trace_type="sqlite", path=str(db)):
        assert ROUTER in logging.getLogger("userlib").handlers
        assert ROUTER not in logging.getLogger("httpx").handlers
        with job("j"), stage("s"):
            for i in range(25):
                lib.info("routed %d", i)
        logging.getLogger("httpx").warning("never routed")
    lib.warning("outside every scope")
    run = open_store(db).get_run("xl-run")
    stage_span = spans(run.records)[("stage", "s")]
    routed = [r for r in run.logs if r.message.startswith("routed ")]
    assert len({r.record_id for r in routed}) == 25
    assert {r.message for r in routed} == {f"routed {i}" for i in range(25)}
    for rec in routed:
        assert (rec.workflow_name, rec.job_name, rec.stage_name) == ("w", "j", "s")
        assert (rec.trace_id, rec.span_id) == (stage_span.trace_id, stage_span.span_id)
        assert rec.logger == "userlib.sub"
    conn = sqlite3.connect(db)
    try:
        texts = {row[0] for row in conn.execute("SELECT message FROM traces")}
    finally:
        conn.close()
    assert "never routed" not in texts and "outside every scope" not in texts


def test_dag_stages_route_them_too(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    def body() -> None:
        for i in range(10):
            logging.getLogger("otherlib").warning("dag line %d", i)

    wf = Workflow(
        "dag", [Job("j", [Stage("st", body)])], extras={"trace_type": "sqlite", "path": str(db)}
    )
    result = wf.run(run_id="xl-dag")
    assert result.status == "succeeded"
    run = open_store(db).get_run("xl-dag")
    lines = [r for r in run.logs if r.message.startswith("dag line ")]
    assert len({r.record_id for r in lines}) == 10
    assert {(r.job_name, r.stage_name) for r in lines} == {("j", "st")}
    assert {r.span_id for r in lines} == {spans(run.records)[("stage", "st")].span_id}


def test_routing_keeps_the_scope_level_and_handler_filters_and_loses_nothing_across_threads(
    tmp_path: Path,
) -> None:
    """The router takes no handler lock: 4 threads logging at once inside one scope (their
    contexts copied) lose no record; a record under the trace's level, or one a filter on the
    router refuses, is not routed."""
    import contextvars
    import threading

    db = tmp_path / "t.db"
    lib = logging.getLogger("userlib.threads")

    def refuse_secret(record: logging.LogRecord) -> bool:
        return "secret" not in record.getMessage()

    with workflow("w", run_id="xl-threads", trace_type="sqlite", path=str(db)) as wf:
        wf.level = logging.INFO
        ROUTER.addFilter(refuse_secret)
        try:
            with stage("s"):
                lib.debug("under the level")
                lib.info("a secret line")

                def work(t: int) -> None:
                    for i in range(200):
                        lib.info("thread %d line %d", t, i)

                threads = [
                    threading.Thread(target=contextvars.copy_context().run, args=(work, t))
                    for t in range(4)
                ]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
        finally:
            ROUTER.removeFilter(refuse_secret)
    run = open_store(db).get_run("xl-threads")
    lines = [r for r in run.logs if r.message.startswith("thread ")]
    assert len({r.record_id for r in lines}) == len(lines) == 800
    assert {r.message for r in lines} == {
        f"thread {t} line {i}" for t in range(4) for i in range(200)
    }
    assert {r.stage_name for r in lines} == {"s"}
    texts = {r.message for r in run.logs}
    assert "under the level" not in texts and "a secret line" not in texts
