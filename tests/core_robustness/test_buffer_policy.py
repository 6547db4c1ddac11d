"""Buffer-full policy, logging after close, close() idempotence and flush() semantics.

``GateSink`` below is a sink of this test, not a mock of our code: it implements the documented
Exporter protocol (the way users add destinations) and writes batches to a real JSON-lines file,
but only while its gate is open, so a test can hold the worker and fill the buffer for real.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from robust_helpers import multi_extras, record_ids, sink_locations

from workflow_traces import (
    BufferedHandler,
    MultiHandler,
    Record,
    SinkError,
    SQLiteHandler,
    Trace,
    TraceClosedError,
    WorkflowFileHandler,
    get_trace,
    open_store,
)
from workflow_traces.core.record import F_SIZE
from workflow_traces.pipeline.bounds import FOOTPRINT, SAMPLE_EVERY, BufferBounds


class GateSink:
    """Writes each batch to ``path`` as JSON lines once ``gate`` is open."""

    def __init__(self, path: Path) -> None:
        self.name = f"gate:{path.name}"
        self.path = path
        self.gate = threading.Event()
        self.entered = threading.Event()

    def export(self, batch: Sequence[Record]) -> None:
        self.entered.set()
        self.gate.wait(30)
        with open(self.path, "ab") as fh:
            fh.writelines(orjson.dumps(r.record_id) + b"\n" for r in batch)

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        return None

    def ids(self) -> list[str]:
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines()]


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[GateSink]:
    sink = GateSink(tmp_path / "gate.jsonl")
    yield sink
    sink.gate.set()  # never leave a worker stuck


def _gated(
    sink: GateSink, *, queue_size: int, overflow: str, block_timeout: float = 1.0, **kw: Any
) -> BufferedHandler:
    return BufferedHandler(
        sink,
        run_id="gated",
        batch_records=queue_size,
        flush_interval=0.05,
        queue_size=queue_size,
        overflow=overflow,  # type: ignore[arg-type]
        block_timeout=block_timeout,
        **kw,
    )


def _hold_worker(sink: GateSink, trace: Trace) -> None:
    """Make the worker take one record into an export that waits at the gate."""
    trace.info("held by the worker")
    assert sink.entered.wait(5)


def test_drop_policy_counts_and_reports_drops(gate: GateSink, reports: Any) -> None:
    handler = _gated(gate, queue_size=10, overflow="drop")
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    start = time.monotonic()
    for i in range(50):
        trace.info(f"r{i}")
    assert time.monotonic() - start < 1.0  # "drop" never blocks the caller
    assert trace.health()[gate.name].dropped == 40  # 10 fit in the buffer
    assert any("dropped a record" in m and "overflow='drop'" in m for m in reports.messages)
    gate.gate.set()
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed) == (11, 40, 0)
    assert len(gate.ids()) == len(set(gate.ids())) == 11


def test_refusals_from_many_threads_are_each_counted(gate: GateSink) -> None:
    # A full buffer's refusals are counted without the lock, by a counter that each refusal
    # advances in one C call: none is lost between threads.
    handler = _gated(gate, queue_size=10, overflow="drop")
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)

    def log() -> None:
        for i in range(5000):
            trace.info(f"r{i}")

    threads = [threading.Thread(target=log) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trace.health()[gate.name].dropped == 8 * 5000 - 10
    gate.gate.set()
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed) == (11, 8 * 5000 - 10, 0)
    assert len(set(gate.ids())) == 11


def test_block_policy_blocks_up_to_the_timeout_then_drops(gate: GateSink) -> None:
    handler = _gated(gate, queue_size=5, overflow="block", block_timeout=0.2)
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    for i in range(5):
        trace.info(f"fits {i}")
    start = time.monotonic()
    trace.info("waits, then is dropped")
    waited = time.monotonic() - start
    assert waited >= 0.19  # it did wait (a lower bound only; no upper timing assertion)
    assert trace.health()[gate.name].dropped == 1
    gate.gate.set()
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped) == (6, 1)


def test_block_policy_gets_in_when_room_is_made(gate: GateSink) -> None:
    handler = _gated(gate, queue_size=5, overflow="block", block_timeout=10)
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    for i in range(5):
        trace.info(f"fits {i}")
    threading.Timer(0.2, gate.gate.set).start()
    for i in range(20):
        trace.info(f"waits for room {i}")  # blocks until the worker frees room
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped) == (26, 0)


def test_blocked_callers_are_served_in_turn(gate: GateSink) -> None:
    """Many threads blocked on a full buffer all get in: none waits out its timeout while
    others keep logging."""
    handler = _gated(gate, queue_size=50, overflow="block", block_timeout=5)
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    done = threading.Barrier(9)

    def work(n: int) -> None:
        for i in range(300):
            trace.info(f"{n} {i}")
        done.wait()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.gate.set()
    done.wait(30)
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped) == (2401, 0)


def test_logging_after_close(tmp_path: Path, reports: Any) -> None:
    # fail_silently=False: a clear error, from the trace and from a logger alike.
    strict = get_trace("after-close", extras=multi_extras(tmp_path, fail_silently=False))
    strict.info("before")
    strict.close()
    with pytest.raises(TraceClosedError, match="after close"):
        strict.info("after")
    with pytest.raises(TraceClosedError):
        strict.writer("after", "error")
    logger = logging.getLogger("after_close_strict")
    logger.propagate = False
    logger.addHandler(strict.handler)
    try:
        with pytest.raises(TraceClosedError):
            logger.warning("after, through a logger")
    finally:
        logger.removeHandler(strict.handler)
    # fail_silently=True: no error, a report, and the drop is counted.
    lenient = get_trace("after-close-2", extras=multi_extras(tmp_path / "2"))
    lenient.info("before")
    lenient.close()
    lenient.info("after 1")
    lenient.warning("after 2")
    assert any("logged after close()" in m for m in reports.messages)
    assert {h.dropped for h in lenient.health().values()} == {2}
    assert {h.written for h in lenient.health().values()} == {1}
    for location in sink_locations(tmp_path / "2"):
        assert len(record_ids(location, "after-close-2")) == 1


def test_logging_after_close_through_a_single_handler(tmp_path: Path, reports: Any) -> None:
    handler = SQLiteHandler("direct-closed", db_path=tmp_path / "t.db", fail_silently=False)
    logger = logging.getLogger("after_close_direct")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("before")
        handler.close()
        with pytest.raises(TraceClosedError):
            logger.warning("after")
        handler.fail_silently = True
        logger.warning("after, silently")  # reported; no traceback on stderr
    finally:
        logger.removeHandler(handler)
    assert handler.health().dropped == 2
    assert any("closed" in m for m in reports.messages)


def test_close_is_idempotent_everywhere(tmp_path: Path) -> None:
    file_handler = WorkflowFileHandler("idem", base_path=tmp_path / "files")
    sqlite_handler = SQLiteHandler("idem", db_path=tmp_path / "t.db")
    multi = MultiHandler("idem", handlers=[file_handler, sqlite_handler])
    trace = Trace("idem", handler=multi)
    trace.info("one")
    for _ in range(3):
        trace.close()
        multi.close()
        file_handler.close()
        sqlite_handler.close()
        multi.flush()
        trace.flush()
    for location in (tmp_path / "files", tmp_path / "t.db"):
        assert len(record_ids(location, "idem")) == 1


def test_close_timeout_leaves_records_counted_and_raised(gate: GateSink, reports: Any) -> None:
    handler = _gated(gate, queue_size=1000, overflow="block")
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler], fail_silently=False))
    _hold_worker(gate, trace)
    for i in range(30):
        trace.info(f"stuck {i}")
    start = time.monotonic()
    with pytest.raises(SinkError) as info:
        trace.close(timeout=0.3)
    assert time.monotonic() - start < 10  # close gives up; it does not hang
    assert gate.name in str(info.value) and "unwritten" in str(info.value)
    # The 30 queued and the one inside the stuck export are unsent at the deadline: counted
    # as failed (dropped is for a full buffer), the moment close() returns ...
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed, health.queued) == (0, 0, 31, 0)
    assert any("unwritten" in m for m in reports.messages)
    # ... and the abandoned export's late outcome is not counted again.
    gate.gate.set()
    deadline = time.monotonic() + 10
    while len(gate.ids()) != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(gate.ids()) == 1  # the export did finish, after close() had returned
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed, health.queued) == (0, 0, 31, 0)


def test_flush_returns_after_everything_before_it_is_readable(tmp_path: Path) -> None:
    # Long intervals and large buffers: only flush() makes the worker write.
    extras = {
        "trace_type": "multi",
        "fail_silently": False,
        "handlers": [
            {
                "type": "file",
                "path": str(tmp_path / "files"),
                "flush_interval": 60,
                "buffer_size": 1 << 30,
            },
            {
                "type": "sqlite",
                "path": str(tmp_path / "traces.db"),
                "flush_interval": 60,
                "buffer_size": 100_000,
            },
        ],
    }
    trace = get_trace("flushed", extras=extras)
    total = 0
    for round_ in range(5):
        for i in range(round_ * 300 + 1):
            trace.info(f"{round_} {i}")
        total += round_ * 300 + 1
        trace.flush(timeout=30)
        for location in sink_locations(tmp_path):
            with open_store(location) as store:
                assert len(store.get_run("flushed").records) == total, (round_, location)
    trace.close()


def test_flush_with_a_timeout_on_a_stuck_sink(gate: GateSink) -> None:
    handler = _gated(gate, queue_size=100, overflow="block")
    strict = Trace("gated", handler=MultiHandler("gated", handlers=[handler], fail_silently=False))
    _hold_worker(gate, strict)
    strict.info("waiting")
    with pytest.raises(SinkError, match=r"gate:gate\.jsonl: TimeoutError"):
        strict.flush(timeout=0.2)
    gate.gate.set()
    strict.flush(timeout=10)
    strict.close()
    assert len(gate.ids()) == 2


# -- queue_bytes: the buffer's bound in bytes ---------------------------------------------------
def _cost(message: str) -> int:
    """What a record of ``message`` counts for against queue_bytes (see pipeline.bounds)."""
    return len(message) + 256 + FOOTPRINT


def test_queue_bytes_bounds_the_buffer_by_the_records_sizes(gate: GateSink) -> None:
    message = "x" * 1744  # counts 2,224 bytes
    handler = _gated(gate, queue_size=10**6, overflow="drop", queue_bytes=100 * _cost(message))
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    trace.info(message)  # held by the worker, which measured it: the bound is 100 such records
    assert gate.entered.wait(5)
    for _ in range(500):
        trace.info(message)
    health = trace.health()[gate.name]
    assert (health.queued, health.dropped) == (101, 400)  # 100 buffered, 1 in flight
    gate.gate.set()
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed) == (101, 400, 0)
    assert len(set(gate.ids())) == 101


def test_big_records_count_one_by_one_against_queue_bytes(gate: GateSink) -> None:
    big = "b" * 100_000  # over BIG: counted exactly as it is queued
    handler = _gated(gate, queue_size=10**6, overflow="drop", queue_bytes=1 << 20)
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    for _ in range(30):
        trace.info(big)
    fits = (1 << 20) // _cost(big)
    assert trace.health()[gate.name].dropped == 30 - fits
    gate.gate.set()
    trace.close()
    assert trace.health()[gate.name].written == fits + 1


def _blocking_mib_trace(gate: GateSink, block_timeout: float) -> Trace:
    """A trace whose one sink blocks callers on a full buffer of 1 MiB, its worker held."""
    handler = _gated(
        gate, queue_size=10**6, overflow="block", block_timeout=block_timeout, queue_bytes=1 << 20
    )
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    return trace


def test_big_records_wait_for_room_in_bytes_under_the_block_policy(gate: GateSink) -> None:
    # A caller blocked on a full buffer, and the worker placing its record, count bytes as the
    # fast path does: a big record waits for room in bytes, not only for a free slot.
    big = "b" * 100_000
    trace = _blocking_mib_trace(gate, block_timeout=0.05)
    for _ in range(30):
        trace.info(big)  # past the bound, each waits 0.05 s for room, then is dropped
    fits = (1 << 20) // _cost(big)
    health = trace.health()[gate.name]
    assert (health.queued, health.dropped) == (fits + 1, 30 - fits)  # 1 in flight
    gate.gate.set()
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed) == (fits + 1, 30 - fits, 0)


def test_a_blocked_big_record_is_placed_once_the_worker_frees_room(gate: GateSink) -> None:
    big = "c" * 100_000
    trace = _blocking_mib_trace(gate, block_timeout=10.0)
    fits = (1 << 20) // _cost(big)
    for _ in range(fits):
        trace.info(big)
    late = threading.Thread(target=trace.info, args=(big,))
    late.start()  # no room in bytes: it waits in line
    late.join(0.3)
    assert late.is_alive() and trace.health()[gate.name].queued == fits + 1  # 1 in flight
    gate.gate.set()  # the worker takes the buffer and places the waiting record
    late.join(5)
    assert not late.is_alive()
    trace.close()
    health = trace.health()[gate.name]
    assert (health.written, health.dropped, health.failed) == (fits + 2, 0, 0)


def test_a_record_bigger_than_queue_bytes_is_taken_into_an_empty_buffer(gate: GateSink) -> None:
    handler = _gated(gate, queue_size=10, overflow="drop", queue_bytes=1000)
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    trace.info("y" * 200_000)
    gate.gate.set()
    trace.close()
    assert (trace.health()[gate.name].written, trace.health()[gate.name].dropped) == (1, 0)


def test_queue_bytes_bounds_the_memory_a_full_buffer_takes(gate: GateSink) -> None:
    """The bound is about memory: what a buffer full of short records holds, measured with
    tracemalloc, stays within 10% of queue_bytes (and the buffer did fill)."""
    import tracemalloc

    limit = 4 << 20
    handler = _gated(gate, queue_size=10**6, overflow="drop", queue_bytes=limit)
    trace = Trace("gated", handler=MultiHandler("gated", handlers=[handler]))
    _hold_worker(gate, trace)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            trace.info(f"processing item {i}")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    health = trace.health()[gate.name]
    assert health.dropped > 0 and health.queued > 5_000
    assert held <= limit * 1.1, (held, health.queued)
    gate.gate.set()
    trace.close()


def test_queue_bytes_is_a_key_of_every_sink_and_checked(tmp_path: Path) -> None:
    from workflow_traces.errors import ConfigError

    trace = get_trace(
        "qb",
        extras={"handlers": [{"type": "file", "path": str(tmp_path), "queue_bytes": 1 << 20}]},
    )
    (handler,) = trace.handler.handlers
    assert handler.channel._bounds.queue_bytes == 1 << 20
    trace.close()
    with pytest.raises(ConfigError) as info:
        get_trace("qb", extras={"handlers": [{"type": "sqlite", "queue_bytes": 0}]})
    assert "queue_bytes" in str(info.value) and "0" in str(info.value)


def test_the_mean_size_is_measured_on_every_eighth_record_until_a_big_one_is_counted() -> None:
    bounds = BufferBounds(10**6, 1 << 30)
    batch = [(*[None] * F_SIZE, 300 + i) for i in range(800)]  # sizes 300 to 1,099
    sizes = bounds.sizes_to_measure(batch)
    assert sizes == [300 + i for i in range(0, 800, SAMPLE_EVERY)]
    bounds.measure(sizes)
    assert abs(bounds.avg_cost - FOOTPRINT - 699.5) < 699.5 * 0.01  # the whole batch's mean
    # A big record counted as it was queued: every size is read, so that it is found and its
    # bytes leave the count.
    bounds.add_big(100_000)
    big_batch = [*batch, (*[None] * F_SIZE, 100_000)]
    sizes = bounds.sizes_to_measure(big_batch)
    assert len(sizes) == len(big_batch)
    bounds.measure(sizes)
    assert bounds.big_bytes == 0
