"""``get_trace(run_id)`` with no extras builds its sinks from the TRACE_* settings; extras
override them; explicit extras keep working as the spec shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from settings_helpers import write_env

from workflow_traces import SQLiteHandler, WorkflowFileHandler, get_trace, open_store


def records(location: Path, run_id: str = "r1") -> list[object]:
    with open_store(location) as store:
        return list(store.get_run(run_id).records)


def test_nothing_configured_gives_a_file_trace_under_logs(tmp_path: Path) -> None:
    trace = get_trace("r1")
    trace.info("hello")
    trace.close()
    assert trace.handler_types == ["WorkflowFileHandler"]
    assert trace.url.scheme == "file"
    [rec] = records(tmp_path / "logs")
    assert rec.message == "hello"  # type: ignore[attr-defined]


def test_single_sqlite_trace_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_TYPE", "sqlite")
    monkeypatch.setenv("TRACE_SQLITE_PATH", str(tmp_path / "db" / "t.db"))
    monkeypatch.setenv("TRACE_BUFFER_SIZE", "5")
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "wf-env")
    monkeypatch.setenv("TRACE_ENVIRONMENT", "staging")
    trace = get_trace("r1")
    handler = trace.get_handler_by_type(SQLiteHandler)
    assert handler is not None and handler.buffer_size == 5
    trace.info("hello")
    trace.close()
    [rec] = records(tmp_path / "db" / "t.db")
    assert rec.workflow_name == "wf-env"  # type: ignore[attr-defined]
    assert rec.extras == {"environment": "staging"}  # type: ignore[attr-defined]
    assert trace.extras["environment"] == "staging"


def test_multi_from_indexed_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", str(tmp_path / "files"))
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__1__PATH", str(tmp_path / "t.db"))
    monkeypatch.setenv("TRACE_JOB_NAME", "job-env")
    trace = get_trace("r1")
    assert trace.handler_types == ["WorkflowFileHandler", "SQLiteHandler"]
    assert trace.url.scheme == "multi"
    for i in range(10):
        trace.info(f"m{i}")
    trace.close()
    from_file = records(tmp_path / "files")
    from_db = records(tmp_path / "t.db")
    assert [r.record_id for r in from_file] == [r.record_id for r in from_db]  # type: ignore[attr-defined]
    assert len({r.record_id for r in from_db}) == 10  # type: ignore[attr-defined]
    assert {r.job_name for r in from_db} == {"job-env"}  # type: ignore[attr-defined]


def test_extras_override_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_TYPE", "sqlite")
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "wf-env")
    monkeypatch.setenv("TRACE_FAIL_SILENTLY", "false")
    trace = get_trace(
        "r1",
        extras={"trace_type": "file", "path": str(tmp_path / "x"), "workflow_name": "wf-code"},
    )
    assert trace.handler_types == ["WorkflowFileHandler"]
    assert trace.handler.fail_silently is False  # from the environment: extras do not set it
    trace.info("hello")
    trace.close()
    [rec] = records(tmp_path / "x")
    assert rec.workflow_name == "wf-code"  # type: ignore[attr-defined]


def test_extras_handlers_win_over_environment_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type": "file"}, {"type": "sqlite"}]')
    trace = get_trace(
        "r1", extras={"handlers": [{"type": "sqlite", "path": str(tmp_path / "only.db")}]}
    )
    try:
        assert trace.handler_types == ["SQLiteHandler"]
    finally:
        trace.close()


def test_spec_example_without_trace_type_builds_every_handler(tmp_path: Path) -> None:
    """The spec's high-throughput example gives handlers and no trace_type: both are built."""
    extras = {
        "handlers": [
            {"type": "file", "buffer_size": 16384, "flush_interval": 5.0},
            {"type": "sqlite", "buffer_size": 500, "flush_interval": 5.0},
        ]
    }
    trace = get_trace("r1", extras=extras)
    trace.info("hello")
    trace.close()
    assert trace.handler_types == ["WorkflowFileHandler", "SQLiteHandler"]
    assert [r.message for r in records(tmp_path / "logs")] == ["hello"]  # type: ignore[attr-defined]
    db = tmp_path / "logs" / "workflow_traces.db"
    assert [r.message for r in records(db)] == ["hello"]  # type: ignore[attr-defined]


def test_trace_path_is_the_default_folder_for_explicit_extras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_PATH", str(tmp_path / "elsewhere"))
    trace = get_trace("r1", extras={"trace_type": "file"})
    try:
        handler = trace.get_handler_by_type(WorkflowFileHandler)
        assert handler is not None and handler.log_dir == tmp_path / "elsewhere"
    finally:
        trace.close()


def test_profile_chosen_in_extras(tmp_path: Path) -> None:
    write_env(tmp_path / ".env.staging", f"TRACE_TYPE=sqlite\nTRACE_SQLITE_PATH={tmp_path}/s.db")
    trace = get_trace("r1", extras={"profile": "staging"})
    trace.info("hello")
    trace.close()
    assert [r.message for r in records(tmp_path / "s.db")] == ["hello"]  # type: ignore[attr-defined]


def test_settings_are_not_read_per_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After get_trace, changing the environment or the .env file changes nothing for the
    trace already built: records never read settings."""
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "first")
    trace = get_trace("r1")
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "second")
    write_env(tmp_path / ".env", "TRACE_BANANA=1")  # would be an error if read
    trace.info("hello")
    trace.close()
    [rec] = records(tmp_path / "logs")
    assert rec.workflow_name == "first"  # type: ignore[attr-defined]
