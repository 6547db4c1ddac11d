"""How a worker cuts its buffer into batches, and how the SQLite sink writes a batch.

Real channels with a recording exporter (our own exporter interface), and a real SQLite file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from workflow_traces import SQLiteHandler, get_trace, open_store
from workflow_traces.core.record import F_MESSAGE, F_SIZE, Record
from workflow_traces.exporters.sqlite.handler import INSERT_COLUMNS, SQLiteExporter
from workflow_traces.exporters.sqlite.rows import Statements
from workflow_traces.pipeline.channel import Channel


class Recording:
    """Keeps every batch it is given, after the test lets the worker go."""

    name = "recording"

    def __init__(self, takes_values: bool = False, group: int = 1) -> None:
        self.takes_values = takes_values
        self.group = group
        self.batches: list[list[Any]] = []
        self.gate = threading.Event()

    def export(self, batch: Sequence[Any]) -> None:
        self.gate.wait(30)
        self.batches.append(list(batch))

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        return None


def _values(i: int, size: int = 256) -> tuple[Any, ...]:
    rec = Record(
        time_ns=i,
        level="INFO",
        levelno=20,
        message=f"m{i}",
        run_id="r",
        parent_run_id=None,
        workflow_name=None,
        job_name=None,
        stage_name=None,
        filename=None,
        lineno=None,
        func_name=None,
        process=1,
        thread=1,
        host="h",
        record_id=f"id-{i}",
        size=size,
    )
    return tuple(rec)


def _messages(batches: list[list[Any]]) -> list[str]:
    return [rec[F_MESSAGE] for batch in batches for rec in batch]


def test_batches_by_records_keep_order_and_respect_the_group_limit() -> None:
    exporter = Recording(group=4)
    ch = Channel(exporter, batch_records=10, flush_interval=60)
    try:
        for i in range(125):
            ch.offer(_values(i))
        exporter.gate.set()
        assert ch.flush(10)
        assert _messages(exporter.batches) == [f"m{i}" for i in range(125)]
        assert max(len(b) for b in exporter.batches) == 40  # 10 records x a group of 4
        assert all(type(rec) is Record for b in exporter.batches for rec in b)
    finally:
        ch.close()


def test_batches_by_bytes_stop_at_the_record_that_reaches_the_limit() -> None:
    exporter = Recording(takes_values=True)
    ch = Channel(exporter, batch_bytes=1000, flush_interval=60)
    try:
        sizes = [300] * 10 + [5000] + [300] * 5
        for i, size in enumerate(sizes):
            ch.offer(_values(i, size))
        exporter.gate.set()
        assert ch.flush(10)
        # 300 x 4 reaches 1000 at the fourth; the 5000-byte record goes on its own.
        assert [sum(rec[F_SIZE] for rec in b) for b in exporter.batches] == [
            1200,
            1200,
            600 + 5000,
            1200,
            300,
        ]
        assert _messages(exporter.batches) == [f"m{i}" for i in range(len(sizes))]
        assert all(type(rec) is tuple for b in exporter.batches for rec in b)
    finally:
        ch.close()


def test_flush_markers_end_batches_and_each_flush_waits_for_its_own_records() -> None:
    exporter = Recording(takes_values=True)
    exporter.gate.set()
    ch = Channel(exporter, batch_records=1000, flush_interval=60)
    try:
        markers = []
        for round_ in range(5):
            for i in range(7):
                ch.offer(_values(round_ * 7 + i))
            markers.append(ch.request_flush())
        for marker in markers:
            assert ch.wait(marker, 10)
        # Each marker ends the batch before it: no batch mixes records from two flushes.
        assert [len(b) for b in exporter.batches] == [7] * 5
        assert _messages(exporter.batches) == [f"m{i}" for i in range(35)]
    finally:
        ch.close()


@pytest.mark.parametrize(("rows", "max_params"), [(100, 250_000), (100, 999), (7, 32_766)])
def test_sqlite_statements_cover_every_batch_size_exactly_once(
    tmp_path: Path, rows: int, max_params: int
) -> None:
    inserts = Statements(rows, max_params)
    width = len(INSERT_COLUMNS)
    most = min(rows, max_params // width)
    assert max(inserts.row_sizes) == most
    for n in [*range(1, 40), most - 1, most, most + 1, 3 * most + 5, 1600]:
        flat = list(range(n * width))
        statements = inserts.rows(flat)
        assert [v for _, params in statements for v in params] == flat
        assert all(sql.count("(?") * width == len(p) == sql.count("?") for sql, p in statements)
        assert all(len(p) <= max_params for _, p in statements)
        assert len({sql for sql, _ in statements}) <= len(inserts.row_sizes)


def test_sqlite_writes_a_backlog_as_one_transaction_of_many_statements(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    exporter = SQLiteExporter(db, batch=5)  # statements of up to 80 rows
    batch = [_values(i) for i in range(137)]  # 80 + 32 + 16 + 8 + 1
    exporter.export(batch)
    exporter.export(batch)  # written twice: INSERT OR IGNORE keeps one copy
    exporter.shutdown()
    conn = sqlite3.connect(db)
    try:
        got = [r[0] for r in conn.execute("SELECT message FROM traces ORDER BY seq")]
    finally:
        conn.close()
    assert got == [f"m{i}" for i in range(137)]


def test_sqlite_sink_with_a_small_buffer_size_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    trace = get_trace(
        "small-batches", extras={"trace_type": "sqlite", "path": str(db), "buffer_size": 3}
    )
    for i in range(1001):
        trace.info(f"m{i}")
    trace.close()
    records = open_store(db).get_run("small-batches").records
    assert [r.message for r in records] == [f"m{i}" for i in range(1001)]
    assert len({r.record_id for r in records}) == 1001


def test_sqlite_handler_passes_buffer_size_to_its_statements(tmp_path: Path) -> None:
    handler = SQLiteHandler("rows", db_path=tmp_path / "t.db", buffer_size=42)
    try:
        exporter = handler.channel.exporter
        assert isinstance(exporter, SQLiteExporter)
        assert exporter._rows == 42 * SQLiteExporter.group
    finally:
        handler.close()


def test_field_positions_match_the_record() -> None:
    from workflow_traces.core import record as _record

    positions = {name: getattr(_record, "F_" + name.upper()) for name in Record._fields}
    assert list(positions.values()) == list(range(len(Record._fields)))


def test_records_and_flushes_from_many_threads_arrive_once_in_order(tmp_path: Path) -> None:
    """Small byte batches (cut and put back often) while other threads flush all the time:
    every record arrives exactly once, each thread's in the order it logged them."""
    trace = get_trace(
        "stress",
        extras={
            "trace_type": "multi",
            "handlers": [
                # Records of about 360 bytes: a cut at 1000 bytes puts one of every four
                # popped back.
                {"type": "file", "path": str(tmp_path / "files"), "buffer_size": 1000},
                {"type": "sqlite", "path": str(tmp_path / "t.db"), "buffer_size": 7},
            ],
        },
    )
    stop = threading.Event()
    pad = "x" * 100

    def flusher() -> None:
        while not stop.is_set():
            trace.flush()

    def writer(n: int) -> None:
        for i in range(3000):
            trace.info(f"w{n}-{i}-{pad}")

    flushers = [threading.Thread(target=flusher) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in flushers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in flushers:
        t.join()
    trace.close()
    for location in (tmp_path / "files", tmp_path / "t.db"):
        records = open_store(location).get_run("stress").records
        messages = [r.message.removesuffix(f"-{pad}") for r in records]
        assert len(messages) == len(set(messages)) == 6 * 3000, location
        for n in range(6):
            mine = [m for m in messages if m.startswith(f"w{n}-")]
            assert mine == [f"w{n}-{i}" for i in range(3000)], location
