"""The delivery pipeline: flush semantics, flush_interval, isolation between sinks, async."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from workflow_traces import (
    BufferedHandler,
    MultiHandler,
    Record,
    SinkError,
    SQLiteHandler,
    TraceClosedError,
    WorkflowFileHandler,
    get_trace,
    open_store,
)
from workflow_traces.exporters.base import ExportResult


class GatedExporter:
    """A sink whose writes wait until the test opens the gate: a stand-in for a slow or hung
    destination (our own exporter interface, not a mock of our code)."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.records: list[Record] = []
        self.started = threading.Event()

    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        self.started.set()
        if not self.gate.wait(60):
            raise TimeoutError("gate never opened")
        self.records.extend(batch)
        return None

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        return None


class FailingExporter(GatedExporter):
    name = "failing"

    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        raise OSError("disk on fire")


def _eventually(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def _count(location: Path, run_id: str) -> int:
    try:
        return open_store(location).get_run(run_id).record_count
    except (KeyError, ValueError):
        return 0


def test_flush_returns_once_everything_before_it_is_written(multi: Any, locations: Any) -> None:
    trace = multi("flush-1")
    for i in range(2500):
        trace.info(f"m{i}")
    trace.flush()
    for location in locations:
        run = open_store(location).get_run("flush-1")
        assert [r.message for r in run.records] == [f"m{i}" for i in range(2500)]


def test_flush_interval_writes_without_flush(tmp_path: Path) -> None:
    trace = get_trace(
        "interval-1",
        extras={
            "trace_type": "multi",
            "handlers": [
                {"type": "file", "path": str(tmp_path / "f"), "flush_interval": 0.2},
                {"type": "sqlite", "path": str(tmp_path / "t.db"), "flush_interval": 0.2},
            ],
        },
    )
    trace.info("soon on disk")
    # No flush() and no close(): the worker writes on its own within flush_interval.
    assert _eventually(lambda: _count(tmp_path / "f", "interval-1") == 1)
    assert _eventually(lambda: _count(tmp_path / "t.db", "interval-1") == 1)
    trace.close()


def test_long_flush_interval_keeps_records_buffered_until_flush(tmp_path: Path) -> None:
    trace = get_trace(
        "interval-2",
        extras={"trace_type": "sqlite", "path": str(tmp_path / "t.db"), "flush_interval": 60.0},
    )
    trace.info("buffered")
    time.sleep(0.5)
    # Batches are by flush_interval (and a full buffer), so nothing is written yet...
    assert not (tmp_path / "t.db").exists() or _count(tmp_path / "t.db", "interval-2") == 0
    trace.flush()
    # ...and flush() writes it at once.
    assert _count(tmp_path / "t.db", "interval-2") == 1
    trace.close()


def test_a_hung_sink_slows_neither_the_caller_nor_another_sink(tmp_path: Path) -> None:
    gated = GatedExporter()
    slow = BufferedHandler(gated, run_id="iso-1", flush_interval=0.05)
    sqlite = SQLiteHandler("iso-1", db_path=tmp_path / "t.db", flush_interval=0.05)
    handler = MultiHandler("iso-1", handlers=[slow, sqlite])
    trace = get_trace("iso-1", extras={"trace_type": "sqlite", "path": str(tmp_path / "o.db")})
    trace.handler.add_handler(slow)
    trace.handler.add_handler(sqlite)
    trace.info("first")
    assert gated.started.wait(10), "the gated sink should be stuck writing"
    # The gated sink is stuck inside export(); these calls return regardless...
    for i in range(1000):
        trace.info(f"m{i}")
    # ...and the SQLite sink writes everything while the other one is still stuck.
    sqlite.flush(timeout=10)
    assert _count(tmp_path / "t.db", "iso-1") == 1001
    assert gated.records == []
    gated.gate.set()
    slow.flush(timeout=10)
    assert len(gated.records) == 1001
    trace.close()
    handler.close()


def test_async_logging_waits_off_the_event_loop_when_a_buffer_is_full() -> None:
    gated = GatedExporter()
    sink = BufferedHandler(
        gated, run_id="async-1", flush_interval=0.05, queue_size=4, block_timeout=30.0
    )
    handler = MultiHandler("async-1", handlers=[sink])
    trace = get_trace("async-1", extras={"trace_type": "sqlite", "path": ":memory:"})
    trace.remove_handler(trace.handler.handlers[0])
    trace.handler.add_handler(sink)
    trace.info("occupies the worker")
    assert gated.started.wait(10)
    for i in range(4):
        trace.info(f"fill {i}")  # the buffer now holds 4: full

    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> int:
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        log_task = asyncio.create_task(trace.ainfo("waits for room"))
        await asyncio.sleep(0.3)
        seen_while_blocked = ticks
        assert not log_task.done()
        gated.gate.set()  # room frees up; ainfo finishes
        await asyncio.wait_for(log_task, 10)
        stop.set()
        await tick_task
        return seen_while_blocked

    seen = asyncio.run(main())
    assert seen >= 10, "the event loop kept running while ainfo waited for room"
    sink.flush(timeout=10)
    assert [r.message for r in gated.records][-1] == "waits for room"
    assert len(gated.records) == 6
    trace.close()
    handler.close()


def test_close_is_idempotent_and_later_records_are_refused(tmp_path: Path) -> None:
    loud = get_trace(
        "closed-1",
        extras={"trace_type": "sqlite", "path": str(tmp_path / "t.db"), "fail_silently": False},
    )
    loud.info("before")
    loud.close()
    loud.close()
    with pytest.raises(TraceClosedError, match="after close"):
        loud.info("after")
    assert _count(tmp_path / "t.db", "closed-1") == 1


def test_failures_reach_the_caller_only_when_asked(tmp_path: Path) -> None:
    failing = BufferedHandler(FailingExporter(), run_id="fail-1", flush_interval=0.05)
    good = WorkflowFileHandler("fail-1", base_path=tmp_path)
    strict = MultiHandler("fail-1", handlers=[failing, good], fail_silently=False)
    trace = get_trace("fail-1", extras={"trace_type": "file", "path": str(tmp_path / "x")})
    trace.remove_handler(trace.handler.handlers[0])
    for h in (failing, good):
        trace.handler.add_handler(h)
    trace.info("one")
    trace.handler.fail_silently = False
    with pytest.raises(SinkError, match="failing: OSError: disk on fire") as info:
        trace.flush()
    assert set(info.value.failures) == {"failing"}
    health = trace.health()
    assert health["failing"].failed == 1 and health["failing"].written == 0
    assert "disk on fire" in (health["failing"].last_error or "")
    assert health[good.name].written == 1
    assert _count(tmp_path, "fail-1") == 1
    trace.handler.fail_silently = True
    trace.info("two")
    trace.flush()  # reported through the diagnostics logger, not raised
    trace.close()
    strict.close()
    assert _count(tmp_path, "fail-1") == 2
