"""Promises at the edges of the trace API (issue 11): an empty run_id means "no run id", an
over-long run_id still gets a folder the file system takes (with the full id in the records),
and ``trace.event(..., error=...)`` takes an exception or a text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from workflow_traces import get_trace, open_store
from workflow_traces.exporters.file import run_dir_name, run_id_from_dir


def _extras(tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {
        "trace_type": "multi",
        "fail_silently": False,
        "handlers": [
            {"type": "file", "path": str(tmp_path / "files")},
            {"type": "sqlite", "path": str(tmp_path / "t.db")},
        ],
        **more,
    }


def _messages(location: Path, run_id: str) -> list[str]:
    with open_store(location) as store:
        return [r.message for r in store.get_run(run_id).records]


def test_an_empty_run_id_means_a_new_one_is_made(tmp_path: Path) -> None:
    traces = [get_trace("", extras=_extras(tmp_path)), get_trace("", "", _extras(tmp_path))]
    for trace in traces:
        trace.info("logged")
        trace.close()
    ids = [t.run_id for t in traces]
    assert all(len(i) == 32 for i in ids) and len(set(ids)) == 2
    assert [t.parent_run_id for t in traces] == [None, None]
    for location in (tmp_path / "files", tmp_path / "t.db"):
        with open_store(location) as store:
            assert sorted(s.run_id for s in store.list_runs()) == sorted(ids)
        assert _messages(location, ids[0]) == ["logged"]


@pytest.mark.parametrize("run_id", ["r" * 4000, "é/" * 2000], ids=["ascii", "encoded"])
def test_a_4000_character_run_id_gets_a_folder_and_keeps_its_full_id(
    tmp_path: Path, run_id: str
) -> None:
    # Another id with the same first 3,999 characters must get its own folder.
    twin = run_id[:-1] + "!"
    for rid in (run_id, twin):
        trace = get_trace(rid, extras=_extras(tmp_path))
        assert trace.handler_types == ["WorkflowFileHandler", "SQLiteHandler"]
        trace.info(f"for {rid[-1]}")
        trace.close()
    folders = sorted(os.listdir(tmp_path / "files"))
    assert len(folders) == 2 and all(len(f.encode()) <= 255 for f in folders)
    assert {run_dir_name(run_id), run_dir_name(twin)} == set(folders)
    for location in (tmp_path / "files", tmp_path / "t.db"):
        with open_store(location) as store:
            assert sorted(s.run_id for s in store.list_runs()) == sorted([run_id, twin])
            records = store.get_run(run_id).records
        assert [(r.run_id, r.message) for r in records] == [(run_id, f"for {run_id[-1]}")]
    # The folder's name alone cannot say the id; its path can (from the records).
    folder = tmp_path / "files" / run_dir_name(run_id)
    assert run_id_from_dir(folder.name) is None
    assert run_id_from_dir(folder) == run_id


def test_short_run_ids_keep_their_readable_folder_names() -> None:
    assert run_dir_name("abc-1") == "run_id=abc-1"
    assert run_id_from_dir("run_id=a%2Fb") == "a/b"
    long_name = run_dir_name("a" * 300)
    assert long_name.startswith("run_id=" + "a" * 100) and len(long_name) <= 200


@pytest.mark.parametrize(
    ("error", "exc_type", "exc_message", "suffix"),
    [
        ("the upstream file was empty", None, "the upstream file was empty", ": the upstream"),
        (ValueError("bad row"), "ValueError", "bad row", ": ValueError: bad row"),
    ],
    ids=["text", "exception"],
)
def test_an_events_error_may_be_an_exception_or_a_text(
    tmp_path: Path, error: Any, exc_type: str | None, exc_message: str, suffix: str
) -> None:
    trace = get_trace("ev-1", extras=_extras(tmp_path))
    rec = trace.event("job", "failed", name="load", error=error)
    trace.close()
    assert (rec.exc_type, rec.exc_message, rec.level) == (exc_type, exc_message, "ERROR")
    assert suffix in rec.message
    for location in (tmp_path / "files", tmp_path / "t.db"):
        with open_store(location) as store:
            (stored,) = store.get_run("ev-1").records
        assert (stored.kind, stored.event, stored.exc_message) == ("event", "failed", exc_message)
