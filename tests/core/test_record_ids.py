"""Record ids: the caller queues only a counter (an int); sinks make the id whole with the
process's prefix, so every store and every consumer sees the same whole id.

The fork tests (core_robustness/test_process_lifecycle.py) check that a child's ids never
collide with its parent's, in both stores, and the four-process test that processes sharing one
run folder and one database keep theirs apart."""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from workflow_traces import open_store
from workflow_traces.core.stdlib import from_log_record
from workflow_traces.exporters.file import RECORD_FIELDS, read_records
from workflow_traces.testing import capture_traces

WHOLE = re.compile(r"[0-9a-f]{16}-\d{16}")


def test_every_store_and_consumer_sees_the_same_whole_ids(multi: Any, tmp_path: Path) -> None:
    with capture_traces() as captured:
        trace = multi("ids-1", workflow_name="wf")
        for i in range(50):
            trace.info(f"line {i}")
        event = trace.event("workflow", "started", name="wf")  # queued as a Record, id whole
        logger = logging.getLogger("test.ids")
        logger.propagate = False
        logger.addHandler(trace.handler)
        logger.warning("through logging")  # the MultiHandler path builds its own tuple
        logger.removeHandler(trace.handler)
        trace.close()
    ids = [r.record_id for r in captured.for_run("ids-1")]
    assert len(ids) == len(set(ids)) == 52
    assert all(WHOLE.fullmatch(i) for i in ids), ids[:3]
    assert event.record_id in ids
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        stored = open_store(location).get_run("ids-1").records
        assert [r.record_id for r in stored] == ids, location
    conn = sqlite3.connect(tmp_path / "traces.db")
    rows = conn.execute("SELECT record_id, typeof(record_id) FROM traces ORDER BY seq").fetchall()
    conn.close()
    assert rows == [(i, "text") for i in ids]


def test_the_file_writes_numbered_ids_after_a_prefix_line(multi: Any, tmp_path: Path) -> None:
    trace = multi("ids-2")
    for i in range(10):
        trace.info(f"line {i}")
    trace.close()
    raw = (tmp_path / "files" / "run_id=ids-2" / "traces.jsonl").read_bytes()
    lines = [orjson.loads(x) for x in raw.splitlines()]
    header, prefix_line, *arrays = lines
    assert header["version"] == 2 and header["fields"] == list(RECORD_FIELDS)
    prefix = prefix_line["id_prefix"]
    at = RECORD_FIELDS.index("record_id")
    assert all(isinstance(a[at], int) for a in arrays) and len(arrays) == 10
    stored = [r.record_id for r in open_store(tmp_path / "files").get_run("ids-2").records]
    assert stored == [f"{prefix}{a[at]}" for a in arrays]


def _array(record_id: str | int, message: str) -> list[Any]:
    values: list[Any] = [None] * len(RECORD_FIELDS)
    values[RECORD_FIELDS.index("time_ns")] = 1
    values[RECORD_FIELDS.index("level")] = "INFO"
    values[RECORD_FIELDS.index("levelno")] = 20
    values[RECORD_FIELDS.index("message")] = message
    values[RECORD_FIELDS.index("run_id")] = "r"
    values[RECORD_FIELDS.index("record_id")] = record_id
    values[RECORD_FIELDS.index("is_err")] = False
    values[RECORD_FIELDS.index("kind")] = "log"
    return values


def test_the_reader_joins_each_number_to_the_latest_prefix(tmp_path: Path) -> None:
    # Two processes appending to one file, each batch after its own prefix line, the same
    # counter values in both; a Record's whole id among them; and a version 1 file.
    header = {"format": "workflow-traces", "version": 2, "fields": list(RECORD_FIELDS)}
    lines = [
        header,
        {"id_prefix": "aaaa-"},
        _array(1000000000000001, "a1"),
        _array("whole-id", "event"),
        {"id_prefix": "bbbb-"},
        _array(1000000000000001, "b1"),
        {"id_prefix": "aaaa-"},
        _array(1000000000000002, "a2"),
    ]
    path = tmp_path / "v2.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    got = [(r.message, r.record_id) for r in read_records(path)]
    assert got == [
        ("a1", "aaaa-1000000000000001"),
        ("event", "whole-id"),
        ("b1", "bbbb-1000000000000001"),
        ("a2", "aaaa-1000000000000002"),
    ]
    old = tmp_path / "v1.jsonl"
    v1 = [{**header, "version": 1}, _array("p-1000000000000001", "old")]
    old.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in v1))
    assert [r.record_id for r in read_records(old)] == ["p-1000000000000001"]


def test_a_record_made_from_a_log_record_has_a_whole_id() -> None:
    # The Prefect adapter's way in: it makes Records from LogRecords and dispatches them.
    lr = logging.LogRecord("test.ids", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    rec = from_log_record(lr, "run", None, (None, None, None), None)
    assert WHOLE.fullmatch(rec.record_id) and rec.message == "hello you"
