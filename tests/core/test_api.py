"""The names users type: the public surface, get_trace's types and the trace API."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

import workflow_traces
from workflow_traces import (
    MultiHandler,
    MultiTrace,
    SQLiteHandler,
    WorkflowFileHandler,
    get_trace,
    open_store,
)

EXPECTED_PUBLIC = {
    "BufferedHandler",
    "ConfigError",
    "ElasticsearchHandler",
    "ExportError",
    "ExportResult",
    "Exporter",
    "OpenSearchHandler",
    "MultiHandler",
    "MultiTrace",
    "Node",
    "PayloadTooLargeError",
    "PermanentError",
    "Record",
    "RestAPIHandler",
    "RetryableError",
    "Run",
    "RunNotFoundError",
    "RunSummary",
    "SQLiteHandler",
    "Scope",
    "SinkError",
    "SinkHealth",
    "Store",
    "Trace",
    "TraceClosedError",
    "TraceError",
    "TraceSettings",
    "UnsafeRunIdError",
    "WorkflowFileHandler",
    "__version__",
    "context_env",
    "current_scope",
    "get_trace",
    "open_store",
    "prune",
    "PruneResult",
    "render_tree",
    "ship",
    "ShipResult",
    "trace_scope",
}


def test_public_names_are_pinned() -> None:
    # Adding or removing a public name is a decision: change this list with it.
    assert set(workflow_traces.__all__) == EXPECTED_PUBLIC
    for name in workflow_traces.__all__:
        assert getattr(workflow_traces, name) is not None


@pytest.mark.parametrize(
    ("trace_type", "where"),
    [("file", "logs"), ("sqlite", "logs/workflow_traces.db")],
)
def test_single_types_use_documented_defaults(
    trace_type: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trace = get_trace("single-1", extras={"trace_type": trace_type})
    trace.info("hello")
    trace.close()
    run = open_store(tmp_path / where).get_run("single-1")
    assert [r.message for r in run.records] == ["hello"]


def test_single_type_takes_handler_keys_at_top_level(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    trace = get_trace("top-1", extras={"trace_type": "sqlite", "path": str(db), "buffer_size": 7})
    assert trace.handler_types == ["SQLiteHandler"]
    handler = trace.get_handler_by_type(SQLiteHandler)
    assert handler is not None and handler.buffer_size == 7
    trace.info("x")
    trace.close()
    assert open_store(db).get_run("top-1").record_count == 1


def test_missing_run_id_is_generated(tmp_path: Path) -> None:
    a = get_trace(extras={"trace_type": "file", "path": str(tmp_path)})
    b = get_trace(extras={"trace_type": "file", "path": str(tmp_path)})
    assert a.run_id and b.run_id and a.run_id != b.run_id
    a.close()
    b.close()


def test_trace_attributes_and_handler_management(multi: Any, tmp_path: Path) -> None:
    trace = multi("attrs-1", parent_run_id="parent-1", workflow_name="wf")
    assert isinstance(trace, MultiTrace)
    assert (trace.run_id, trace.parent_run_id) == ("attrs-1", "parent-1")
    assert trace.extras["workflow_name"] == "wf"
    assert trace.handler_count == 2
    assert trace.handler_types == ["WorkflowFileHandler", "SQLiteHandler"]
    file_handler = trace.get_handler_by_type(WorkflowFileHandler)
    assert file_handler is not None and file_handler.log_dir == tmp_path / "files"
    extra = SQLiteHandler(run_id=trace.run_id, db_path=tmp_path / "extra.db", extras=trace.extras)
    trace.add_handler(extra)
    assert trace.get_handlers_by_type(SQLiteHandler)[-1] is extra
    trace.info("to three sinks")
    trace.remove_handler(extra)
    trace.info("to two sinks")
    trace.flush()
    extra.close()
    assert [r.message for r in open_store(tmp_path / "extra.db").get_run("attrs-1").records] == [
        "to three sinks"
    ]
    assert open_store(tmp_path / "traces.db").get_run("attrs-1").record_count == 2


def test_multitrace_has_the_spec_constructor(tmp_path: Path) -> None:
    handler = MultiHandler("ctor-1", handlers=[WorkflowFileHandler("ctor-1", base_path=tmp_path)])
    trace = MultiTrace(urlparse("multi://"), "ctor-1", None, {"workflow_name": "w"}, handler)
    trace.info("hi")
    trace.close()
    assert open_store(tmp_path).get_run("ctor-1").records[0].workflow_name == "w"


def test_levels_writer_and_error_stream(multi: Any, tmp_path: Path) -> None:
    trace = multi("levels-1")
    trace.debug("d")
    trace.info("i")
    trace.warning("w")
    trace.error("e")
    trace.critical("c")
    trace.writer("plain but to stderr", "info", is_err=True)
    trace.writer("numbered", 25)
    try:
        raise KeyError("boom")
    except KeyError:
        trace.exception("caught")
    trace.close()
    records = open_store(tmp_path / "traces.db").get_run("levels-1").records
    assert [(r.level, r.message) for r in records] == [
        ("DEBUG", "d"),
        ("INFO", "i"),
        ("WARNING", "w"),
        ("ERROR", "e"),
        ("CRITICAL", "c"),
        ("INFO", "plain but to stderr"),
        ("Level 25", "numbered"),
        ("ERROR", "caught"),
    ]
    caught = records[-1]
    assert caught.exc_type == "KeyError" and caught.exc_message == "'boom'"
    assert caught.exc_traceback and "raise KeyError" in caught.exc_traceback
    run_dir = tmp_path / "files" / "run_id=levels-1"
    stderr = (run_dir / "stderr.txt").read_text()
    stdout = (run_dir / "stdout.txt").read_text()
    assert "plain but to stderr" in stderr and "[ERROR] e" in stderr and "caught" in stderr
    assert "[INFO] i" in stdout and "plain but to stderr" not in stdout
    strict = multi("levels-2", fail_silently=False)
    with pytest.raises(ValueError, match=r"level: expected one of .*got 'loud'"):
        strict.writer("x", "loud")


def test_record_fields_name_the_users_code(multi: Any, tmp_path: Path) -> None:
    trace = multi("fields-1", workflow_name="wf", job_name="j", stage_name="s", team="data")

    def users_function() -> int:
        trace.info("from the user")
        return users_function.__code__.co_firstlineno + 1

    line = users_function()
    logger = logging.getLogger("test.fields")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(trace.handler)

    def log_via_logging() -> int:
        logger.info("via logging %s", "args", extra={"batch": 3})
        return log_via_logging.__code__.co_firstlineno + 1

    logger_line = log_via_logging()
    logger.removeHandler(trace.handler)
    trace.close()
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        first, second = open_store(location).get_run("fields-1").records
        assert (first.filename, first.lineno, first.func_name) == (
            __file__,
            line,
            "users_function",
        )
        assert (second.filename, second.lineno) == (__file__, logger_line)
        assert second.func_name == "log_via_logging"
        assert second.message == "via logging args" and second.logger == "test.fields"
        assert second.extras == {"team": "data", "batch": 3}
        assert first.extras == {"team": "data"}
        for rec in (first, second):
            assert (rec.workflow_name, rec.job_name, rec.stage_name) == ("wf", "j", "s")
            assert rec.process == os.getpid() and rec.host
            assert rec.timestamp.tzinfo is UTC
            assert rec.timestamp.microsecond == rec.time_ns // 1000 % 1_000_000
        assert first.thread == threading.get_ident()
        assert first.record_id != second.record_id


def test_trace_is_a_context_manager_sync_and_async(tmp_path: Path) -> None:
    extras = {"trace_type": "sqlite", "path": str(tmp_path / "t.db")}
    with get_trace("cm-1", extras=extras) as trace:
        trace.info("sync")
    assert trace.handler.closed

    async def main() -> None:
        async with get_trace("cm-2", extras=extras) as atrace:
            await atrace.ainfo("async info")
            await atrace.adebug("async debug")
            await atrace.awarning("async warning")
            await atrace.aerror("async error")
            await atrace.acritical("async critical")
            await atrace.awriter("async writer", "info", is_err=True)

    asyncio.run(main())
    store = open_store(tmp_path / "t.db")
    assert [r.message for r in store.get_run("cm-1").records] == ["sync"]
    records = store.get_run("cm-2").records
    assert [r.message for r in records] == [
        "async info",
        "async debug",
        "async warning",
        "async error",
        "async critical",
        "async writer",
    ]
    assert records[0].func_name == "main" and records[0].filename == __file__
    assert records[-1].is_err


def test_multihandler_is_a_logging_handler(tmp_path: Path) -> None:
    handler = MultiHandler(
        "lh-1",
        handlers=[SQLiteHandler("lh-1", db_path=tmp_path / "t.db")],
        extras={"workflow_name": "direct"},
    )
    assert isinstance(handler, logging.Handler)
    logger = logging.getLogger("test.lh")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.debug("one")
    logger.warning("two")
    logger.removeHandler(handler)
    handler.close()
    handler.close()  # idempotent
    records = open_store(tmp_path / "t.db").get_run("lh-1").records
    assert [(r.level, r.message, r.workflow_name) for r in records] == [
        ("DEBUG", "one", "direct"),
        ("WARNING", "two", "direct"),
    ]
