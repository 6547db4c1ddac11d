"""The file store's one-pass summary and events (store/jsonl_scan.py) give what reading every
record gives: on real traced runs, on text that looks like an event, on a batch written twice,
on a line cut short in the middle of the file, on a version-1 file and on other header fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sample_runs import plain_run

from workflow_traces import get_trace, open_store
from workflow_traces.exporters.file import RECORD_FIELDS, RECORDS_FILE, run_dir
from workflow_traces.store.base import RunSummary, summarize_records
from workflow_traces.store.files import FileStore
from workflow_traces.store.jsonl_scan import scan_run
from workflow_traces.store.query import Filters

#: Text that holds what an event's line holds around its kind, and a JSON-looking tail.
MARKER = '","event","workflow","failed",null,null]'


def _files(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "files"
    return {
        "trace_type": "multi",
        "handlers": [{"type": "file", "path": str(folder), "flush_interval": 0.05}],
        "fail_silently": False,
    }


def _reference(store: FileStore, run_id: str) -> tuple[RunSummary | None, list[str]]:
    """Summary and event ids read record by record (the way before the one-pass scan)."""
    records = list(store._read(run_id, Filters(), None, None))
    return summarize_records(run_id, records), [r.record_id for r in records if r.kind == "event"]


def _check_same(base: Path, run_id: str, *, one_pass: bool = True) -> RunSummary:
    store = FileStore(base)
    # Whether the one pass reads this file itself (else the store reads it record by record).
    assert (scan_run(run_id, run_dir(base, run_id) / RECORDS_FILE) is not None) is one_pass
    summary, event_ids = _reference(store, run_id)
    assert summary is not None
    assert store.get_summary(run_id) == summary
    assert [r.record_id for r in store.iter_records(run_id, kind="event")] == event_ids
    nodes, tree_events = [store.run_tree(run_id, depth=0)], []
    while nodes:
        node = nodes.pop()
        tree_events += [e.record_id for e in node.events]
        nodes += node.children
    assert sorted(tree_events) == sorted(event_ids)  # the tree is built from those events
    return summary


def test_a_traced_run_reads_the_same_as_record_by_record(tmp_path: Path) -> None:
    plain_run(_files(tmp_path))
    summary = _check_same(tmp_path / "files", "etl-1")
    assert summary.status == "succeeded" and summary.workflow_name == "etl"
    child = _check_same(tmp_path / "files", "etl-1-child")
    assert child.parent_run_id == "etl-1"


def test_a_message_holding_the_event_marker_is_not_an_event(tmp_path: Path) -> None:
    trace = get_trace("marker", extras=_files(tmp_path))
    trace.info("plain")
    trace.info(MARKER)
    trace.info("event")  # its line holds "event", as an event's kind does
    trace.info('\\","event",')
    trace.flush()
    trace.close()
    path = run_dir(tmp_path / "files", "marker") / RECORDS_FILE
    assert path.read_bytes().count(b'"event",') >= 2  # the header's, and the message's
    summary = _check_same(tmp_path / "files", "marker")
    assert summary.record_count == 4
    assert summary.status is None  # no lifecycle events at all: not "failed"
    with open_store(tmp_path / "files") as store:
        assert list(store.iter_records("marker", kind="event")) == []
        assert [r.message for r in store.iter_records("marker")][1] == MARKER


def test_a_batch_written_twice_and_a_cut_line_count_once(tmp_path: Path) -> None:
    trace = get_trace("twice", extras=_files(tmp_path))
    for i in range(50):
        trace.info(f"line {i}")
    trace.flush()
    path = run_dir(tmp_path / "files", "twice") / RECORDS_FILE
    body = path.read_bytes()
    batch = body[body.index(b'{"id_prefix"') :]
    # The batch again (as a retry writes it), then a line cut short by a kill, which the next
    # batch's prefix line is glued to.
    with open(path, "ab") as fh:
        fh.write(batch + batch.splitlines(keepends=True)[3][:40])
    trace.info("after the cut")
    trace.flush()
    trace.close()
    summary = _check_same(tmp_path / "files", "twice")
    assert summary.record_count == 51 < path.read_bytes().count(b"\n[")
    with open_store(tmp_path / "files") as store:
        ids = [r.record_id for r in store.iter_records("twice")]
    assert len(ids) == len(set(ids)) == summary.record_count


def _line(record_id: str, message: str, time_ns: int, **fields: Any) -> list[Any]:
    values: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    values.update(
        time_ns=time_ns,
        level="INFO",
        levelno=20,
        message=message,
        run_id="old",
        workflow_name="legacy",
        record_id=record_id,
        is_err=False,
        kind="log",
    )
    values.update(fields)
    return [values[f] for f in RECORD_FIELDS]


def _write(path: Path, header: dict[str, Any], lines: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in [header, *lines]))


def test_a_version_1_file_reads_the_same(tmp_path: Path) -> None:
    # Version 1: whole record ids on every line, no id_prefix lines.
    base = tmp_path / "files"
    header = {"format": "workflow-traces", "version": 1, "fields": list(RECORD_FIELDS)}
    start = 1_700_000_000_000_000_000
    ev = {"kind": "event", "scope": "workflow"}
    lines = [
        _line("p-1", "workflow 'legacy' started", start, **ev, event="started"),
        _line("p-2", f"a message with {MARKER}", start + 10),
        _line("p-3", "workflow 'legacy' failed", start + 20, **ev, event="failed", duration=1.5),
    ]
    _write(run_dir(base, "old") / RECORDS_FILE, header, lines)
    summary = _check_same(base, "old")
    assert (summary.status, summary.record_count, summary.duration) == ("failed", 3, 1.5)


def test_a_file_with_other_header_fields_is_read_record_by_record(tmp_path: Path) -> None:
    base = tmp_path / "files"
    # The same fields, the other way round: each line's values in that order.
    header = {"format": "workflow-traces", "version": 2, "fields": list(RECORD_FIELDS)[::-1]}
    path = run_dir(base, "other") / RECORDS_FILE
    start = 1_700_000_000_000_000_000
    ev = {"run_id": "other", "kind": "event", "scope": "job", "job_name": "only"}
    lines = [
        _line("x-1", "go", start, **ev, event="started"),
        _line("x-2", MARKER, start + 500, run_id="other"),
        _line("x-3", "done", start + 10**9, **ev, event="succeeded"),
    ]
    _write(path, header, [line[::-1] for line in lines])
    summary = _check_same(base, "other", one_pass=False)
    assert (summary.status, summary.record_count) == ("succeeded", 3)
