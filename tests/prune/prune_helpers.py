"""Runs with chosen ages, written by the sinks' own exporters into real SQLite databases and
file-sink folders."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from workflow_traces.core.record import Record, new_record_id
from workflow_traces.exporters.file import FileExporter
from workflow_traces.exporters.sqlite.handler import SQLiteExporter

DAY = 86_400 * 10**9


def run_records(
    run_id: str,
    ended_days_ago: float,
    status: str = "succeeded",
    *,
    parent: str | None = None,
    logs: int = 10,
    workflow: str = "wf",
    traced: bool = False,
) -> list[Record]:
    """A run that started an hour before it ended ``ended_days_ago`` days ago; ``status``
    "unfinished" leaves out its end event, None its lifecycle events."""
    end = time.time_ns() - int(ended_days_ago * DAY)
    start = end - 3600 * 10**9

    # With ``traced``, W3C ids made from the run id (one trace and span a run).
    trace_id = hashlib.md5(run_id.encode()).hexdigest() if traced else None
    span_id = trace_id[:16] if trace_id else None

    def rec(t: int, message: str, **fields: object) -> Record:
        return Record(
            t, "INFO", 20, message, run_id, parent, workflow, None, None, None, None, None,
            os.getpid(), 0, "host", new_record_id(), trace_id=trace_id, span_id=span_id,
            **fields,  # type: ignore[arg-type]
        )  # fmt: skip

    out = []
    if status is not None:
        out.append(rec(start, "started", kind="event", scope="workflow", event="started"))
    step = (end - start) // (logs + 1)
    out += [rec(start + step * (i + 1), f"{run_id} line {i}") for i in range(logs)]
    if status not in (None, "unfinished"):
        out.append(rec(end, status, kind="event", scope="workflow", event=status, status=status))
    return out


def write(kind: str, path: Path, records: list[Record]) -> None:
    exporter = FileExporter(path) if kind == "file" else SQLiteExporter(path, batch=1000)
    if kind == "file":
        path.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(records), 5000):
        exporter.export(records[start : start + 5000])
    exporter.shutdown()
