"""A sink that fails mid-run: reported (rate-limited, never fed back into our own handlers), the
other sinks go on; with fail_silently=False the next flush()/close() raises one SinkError naming
the sink and the cause; health() counts what happened."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from robust_helpers import multi_extras, raw_file_ids, record_ids, sqlite_ids

from workflow_traces import ConfigError, SinkError, get_trace, open_store


def _names(trace: Any) -> tuple[str, str]:
    file_name, sqlite_name = trace.health()
    return file_name, sqlite_name


def _log(trace: Any, tag: str, n: int) -> None:
    for i in range(n):
        trace.info(f"{tag} {i}")


def _make_db_a_folder(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.mkdir()


def _make_files_a_file(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.write_text("not a folder any more")


@pytest.fixture
def root_attached() -> Iterator[list[logging.Handler]]:
    """Handlers put here are attached to the root logger for the test (worst case for
    feedback: our own failure reports propagate to the root)."""
    attached: list[logging.Handler] = []
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    yield attached
    for h in attached:
        root.removeHandler(h)
    root.setLevel(old)


def test_sqlite_database_becomes_a_folder_failing_silently(
    tmp_path: Path, reports: Any, root_attached: list[logging.Handler]
) -> None:
    trace = get_trace("db-gone", extras=multi_extras(tmp_path))
    logging.getLogger().addHandler(trace.handler)
    root_attached.append(trace.handler)
    file_name, sqlite_name = _names(trace)
    _log(trace, "before", 10)
    trace.flush()
    _make_db_a_folder(tmp_path / "traces.db")
    for _ in range(5):  # five failing batches
        _log(trace, "after", 10)
        trace.flush()  # failing silently: no raise
    logging.getLogger("some.app").info("through the root logger")
    trace.close()

    health = trace.health()
    assert (health[file_name].written, health[file_name].failed) == (61, 0)
    assert (health[sqlite_name].written, health[sqlite_name].failed) == (10, 51)
    assert "OperationalError" in (health[sqlite_name].last_error or "")
    # The file sink went on with every record, exactly once.
    counts = raw_file_ids(tmp_path / "files" / "run_id=db-gone")
    assert counts.total() == 61 and set(counts.values()) == {1}
    # Reported through the workflow_traces logger, once per 10 s for the same failure ...
    failed = [m for m in reports.messages if f"sink {sqlite_name} failed" in m]
    assert len(failed) == 1 and "OperationalError" in failed[0]
    assert all(r.name == "workflow_traces" for r in reports.records)
    # ... and never fed back into our own sinks, though they hang off the root logger.
    with open_store(tmp_path / "files") as store:
        loggers = {r.logger for r in store.get_run("db-gone").records}
    assert loggers == {None, "some.app"}


def test_sqlite_database_becomes_a_folder_not_failing_silently(tmp_path: Path) -> None:
    trace = get_trace("db-gone-strict", extras=multi_extras(tmp_path, fail_silently=False))
    _, sqlite_name = _names(trace)
    _log(trace, "before", 10)
    trace.flush()
    _make_db_a_folder(tmp_path / "traces.db")
    _log(trace, "after", 10)
    with pytest.raises(SinkError) as info:
        trace.flush()
    assert list(info.value.failures) == [sqlite_name]
    assert str(info.value).startswith(f"sink failed: {sqlite_name}: OperationalError")
    trace.flush()  # the failure was reported once; nothing new failed since
    _log(trace, "more", 5)
    with pytest.raises(SinkError, match=sqlite_name):
        trace.close()
    trace.close()  # idempotent, and quiet the second time
    assert trace.health()[sqlite_name].failed == 15
    assert raw_file_ids(tmp_path / "files" / "run_id=db-gone-strict").total() == 25


def test_file_folder_replaced_by_a_file_mid_run(tmp_path: Path, reports: Any) -> None:
    trace = get_trace("folder-gone", extras=multi_extras(tmp_path))
    file_name, sqlite_name = _names(trace)
    _log(trace, "before", 10)
    trace.flush()
    _make_files_a_file(tmp_path / "files")
    _log(trace, "after", 10)
    trace.close()
    health = trace.health()
    assert (health[file_name].written, health[file_name].failed) == (10, 10)
    assert (health[sqlite_name].written, health[sqlite_name].failed) == (20, 0)
    assert any(f"sink {file_name} failed to write 10 records" in m for m in reports.messages)
    counts = sqlite_ids(tmp_path / "traces.db", "folder-gone")
    assert counts.total() == 20 and set(counts.values()) == {1}


def test_file_folder_replaced_by_a_file_not_failing_silently(tmp_path: Path) -> None:
    trace = get_trace("folder-gone-strict", extras=multi_extras(tmp_path, fail_silently=False))
    file_name, _ = _names(trace)
    _log(trace, "before", 3)
    trace.flush()
    _make_files_a_file(tmp_path / "files")
    _log(trace, "after", 3)
    with pytest.raises(SinkError) as info:
        trace.close()
    assert list(info.value.failures) == [file_name]
    assert isinstance(info.value.failures[file_name], OSError)
    assert file_name in str(info.value)


def test_run_folder_deleted_mid_run_is_recreated(tmp_path: Path) -> None:
    """Deleting the log folder under a running trace must not swallow the next records."""
    trace = get_trace("folder-deleted", extras=multi_extras(tmp_path, fail_silently=False))
    _log(trace, "before", 5)
    trace.flush()
    shutil.rmtree(tmp_path / "files")
    _log(trace, "after", 5)
    trace.close()
    assert [m for m in _messages(tmp_path / "files", "folder-deleted")] == [
        f"after {i}" for i in range(5)
    ]
    assert sqlite_ids(tmp_path / "traces.db", "folder-deleted").total() == 10


def test_database_deleted_mid_run_is_recreated(tmp_path: Path) -> None:
    trace = get_trace("db-deleted", extras=multi_extras(tmp_path, fail_silently=False))
    _log(trace, "before", 5)
    trace.flush()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'traces.db'}{suffix}").unlink(missing_ok=True)
    _log(trace, "after", 5)
    trace.close()
    assert _messages(tmp_path / "traces.db", "db-deleted") == [f"after {i}" for i in range(5)]
    assert raw_file_ids(tmp_path / "files" / "run_id=db-deleted").total() == 10


def _messages(location: Path, run_id: str) -> list[str]:
    with open_store(location) as store:
        return [r.message for r in store.get_run(run_id).records]


def _workers() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("workflow-traces:")}


def test_get_trace_with_a_handler_that_cannot_be_built(tmp_path: Path, reports: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    handlers = [
        {"type": "sqlite", "path": str(tmp_path / "ok.db")},
        {"type": "file", "path": str(blocker / "logs")},
        {"type": "file", "path": str(tmp_path / "files")},
    ]
    before = _workers()
    with pytest.raises(ConfigError, match=r"handlers\[1\]\.path: cannot create folder"):
        get_trace(
            "unbuildable",
            extras={"trace_type": "multi", "handlers": handlers, "fail_silently": False},
        )
    # The handler built before the failing one was closed again: no worker left running.
    assert _workers() == before

    trace = get_trace("unbuildable", extras={"trace_type": "multi", "handlers": handlers})
    assert trace.handler_types == ["SQLiteHandler", "WorkflowFileHandler"]
    assert any("left out handler 1 (file)" in m for m in reports.messages)
    trace.info("logged to the two others")
    trace.close()
    assert list(record_ids(tmp_path / "ok.db", "unbuildable").values()) == [1]
    assert list(record_ids(tmp_path / "files", "unbuildable").values()) == [1]
