"""One fan-out: ``fanout.offer_all`` (through ``MultiHandler.offer``) is how every way in reaches
the sinks, and the hot path's one inlined copy (``core.trace._log_call``) does exactly what it
does: the same sinks for the same levels, the same choice between appending to a buffer and
calling ``offer`` (which wakes the worker, applies the overflow policy and refuses after close),
and the same handling of a closed sink.

The recording targets below stand in for a Channel only in what the fan-out sees of one (a
buffer, ``wake_records`` and ``offer``/``offer_nowait``); the tests at the end use real
Channels with real workers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytest

from workflow_traces.core.record import F_MESSAGE, Record, RecordValues
from workflow_traces.core.trace import Trace
from workflow_traces.errors import TraceClosedError
from workflow_traces.exporters.base import ExportResult
from workflow_traces.pipeline.fanout import BIG as _BIG
from workflow_traces.pipeline.fanout import Tap, offer_all, target
from workflow_traces.pipeline.handler import BufferedHandler
from workflow_traces.pipeline.multi import MultiHandler


class _Recording(Tap):
    """A target that records how each record reached it: appended to its buffer by the
    fan-out, or handed to ``offer``/``offer_nowait``."""

    def __init__(self, wake_records: int, *, closed: bool = False, full: bool = False) -> None:
        self._dq: deque[Any] = deque()  # type: ignore[assignment]
        self.wake_records = wake_records
        self.closed = closed
        self.full = full
        self.offered: list[str] = []

    def offer(self, rec: RecordValues) -> None:
        if self.closed:
            raise TraceClosedError("closed")
        self.offered.append(rec[F_MESSAGE])

    def offer_nowait(self, rec: RecordValues) -> bool:
        if self.full:
            return False
        self.offer(rec)
        return True

    def routes(self) -> tuple[list[str], list[str]]:
        return [r[F_MESSAGE] for r in self._dq], list(self.offered)


def _setup(*, fail_silently: bool = True) -> tuple[Trace, MultiHandler, list[_Recording]]:
    handler = MultiHandler("fan-out", fail_silently=fail_silently)
    sinks = [
        _Recording(10**6),  # room: small records are appended
        _Recording(10**6),
        _Recording(0),  # at its wake threshold: every record goes through offer()
        _Recording(10**6, full=True),
        _Recording(0, closed=True),  # closed on its own (wake_records 0, as a Channel): refuses
    ]
    levels = [0, 30, 10, 0, 40]
    handler.targets = tuple(target(lvl, s) for lvl, s in zip(levels, sinks, strict=True))
    return Trace("fan-out", handler=handler), handler, sinks


#: Each level, a custom one among them (45, through writer), with a small and a big message.
_MESSAGES = [(lv, f"m-{lv}" + "x" * size) for lv in (10, 20, 30, 40, 45, 50) for size in (0, _BIG)]


def _run(way: str, trace: Trace, handler: MultiHandler) -> None:
    for levelno, message in _MESSAGES:
        if way == "inlined":  # the hot path: the level's own method
            method = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
            if levelno in method:
                getattr(trace, method[levelno])(message)
            else:
                trace.writer(message, levelno)
        elif way == "offer_all":  # the same record, built without queueing, then fanned out
            rec = trace._record(levelno, message, levelno >= 40, None, 1, queue=False)
            try:
                offer_all(handler.targets, rec, levelno)
            except TraceClosedError as exc:
                handler.refused(rec, exc)
        else:  # MultiHandler.offer, the fan-out's one door for the other ways in
            rec = trace._record(levelno, message, levelno >= 40, None, 1, queue=False)
            handler.offer(rec, levelno)


def test_the_inlined_copy_and_offer_all_reach_the_same_sinks_the_same_way() -> None:
    results = {}
    for way in ("inlined", "offer_all", "offer"):
        trace, handler, sinks = _setup()
        _run(way, trace, handler)
        results[way] = ([s.routes() for s in sinks], handler.health(), handler._after_close)
    assert results["inlined"] == results["offer_all"] == results["offer"]
    routes, _, refused = results["inlined"]
    # What the fan-out did, spelled out: levels admit, big records and a buffer at its wake
    # threshold go through offer(), and the closed sink's refusals are counted, not raised.
    appended0, offered0 = routes[0]
    assert len(appended0) == 6 and all(len(m) < _BIG for m in appended0)
    assert len(offered0) == 6 and all(len(m) >= _BIG for m in offered0)
    assert {m[2:4] for m in routes[1][0] + routes[1][1]} == {"30", "40", "45", "50"}
    assert routes[2][0] == [] and len(routes[2][1]) == 12
    assert refused == 2 * 3  # levels 40, 45 and 50, small and big, reached the closed sink


def test_with_fail_silently_off_both_copies_raise_the_closed_sinks_error() -> None:
    for way in ("inlined", "offer"):
        trace, handler, sinks = _setup(fail_silently=False)
        with pytest.raises(TraceClosedError):
            if way == "inlined":
                trace.error("refused")
            else:
                handler.offer(trace._record(40, "refused", True, None, 1, queue=False), 40)
        # Every open sink has it (the closed one is last here; see the real channels below).
        assert [s.routes()[0] for s in sinks] == [["refused"], ["refused"], [], ["refused"], []]


def test_every_other_way_in_reaches_the_sinks_its_level_admits() -> None:
    """Events, MultiHandler.emit (a stdlib Logger), dispatch and the async calls all go
    through the same fan-out; the async calls never block on a full buffer."""
    trace, handler, sinks = _setup()
    trace.event("job", "started", name="j")  # INFO
    trace.event("job", "failed", name="j")  # ERROR
    logger = logging.getLogger("tests.fan_out")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.warning("from the logger")
    finally:
        logger.removeHandler(handler)

    async def go() -> None:
        await trace.ainfo("async info")

    asyncio.run(go())
    seen = [sorted(a + o) for a, o in (s.routes() for s in sinks)]
    started, failed = "job 'j' started", "job 'j' failed"
    assert seen[0] == sorted(["async info", "from the logger", failed, started])
    assert seen[1] == sorted(["from the logger", failed])
    assert seen[2] == seen[0]
    # The full sink (block policy) is waited for off the loop: the async call handed it to
    # offer() on a worker thread; the synchronous ways offered it directly.
    assert seen[3] == seen[0]
    assert seen[4] == []  # closed: every record at ERROR was refused (counted, see health)
    assert handler._after_close == 1


@pytest.mark.parametrize("size", [1, _BIG], ids=["small", "big"])
def test_a_closed_sink_does_not_keep_the_record_from_the_sinks_after_it(size: int) -> None:
    results = {}
    for way in ("inlined", "offer", "async"):
        handler = MultiHandler("fan-out")
        sinks = [_Recording(10**6), _Recording(0, closed=True), _Recording(10**6)]
        sinks.append(_Recording(0, closed=True))
        sinks.append(_Recording(0))
        handler.targets = tuple(target(0, s) for s in sinks)
        trace = Trace("fan-out", handler=handler)
        message = "m" * size
        if way == "inlined":
            trace.info(message)
        elif way == "offer":
            handler.offer(trace._record(20, message, False, None, 1, queue=False), 20)
        else:
            asyncio.run(trace.ainfo(message))
        results[way] = (
            [sorted(a + o) for a, o in (s.routes() for s in sinks)],
            handler._after_close,
        )
    assert results["inlined"] == results["offer"] == results["async"]
    seen, refused = results["inlined"]
    assert [len(s) for s in seen] == [1, 0, 1, 0, 1] and refused == 1  # counted once


# -- real channels ---------------------------------------------------------------------------------
class _Gate:
    """An exporter that records what it is given and tells the test when a batch arrived."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.records: list[Record] = []
        self.arrived = threading.Event()

    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        self.records.extend(batch)
        self.arrived.set()
        return None

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        return None


@pytest.mark.parametrize("way", ["inlined", "offer"])
def test_both_copies_wake_the_worker_and_refuse_after_a_sink_closes(way: str) -> None:
    # The worker sleeps for an hour unless woken: a buffer reaching 7/8 of its capacity wakes it.
    gate = _Gate(f"gate-{way}")
    sink = BufferedHandler(gate, run_id="fan-out", queue_size=8, flush_interval=3600)
    other = BufferedHandler(_Gate(f"other-{way}"), run_id="fan-out", flush_interval=3600)
    # The closed sink comes first: the sinks after it still take the record.
    handler = MultiHandler("fan-out", handlers=[sink, other])
    trace = Trace("fan-out", handler=handler)

    def log(message: str) -> None:
        if way == "inlined":
            trace.info(message)
        else:
            handler.offer(trace._record(20, message, False, None, 1, queue=False), 20)

    woken_by = sink.channel.wake_records + 1
    for i in range(woken_by):
        log(f"m{i}")
    assert gate.arrived.wait(30), "the worker was not woken by a buffer at its threshold"
    sink.close()
    log("after close")  # refused by the closed sink, counted; the other sink still takes it
    handler.close()
    assert sink.health().dropped >= 1
    assert [r.message for r in other.channel.exporter.records][-1] == "after close"  # type: ignore[attr-defined]
    assert {r.message for r in gate.records} == {f"m{i}" for i in range(woken_by)}


def test_the_fan_out_loop_exists_in_offer_all_and_one_inlined_copy_only() -> None:
    """A loop over a MultiHandler's targets is a fan-out: only ``offer_all`` (with
    ``offer_after``, its rest past a closed sink) and the level methods' inlined copy
    (``core.trace._log_call``'s ``log``) may hold one."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    places = []
    for path in sorted((root / "workflow_traces").rglob("*.py")) + sorted(
        (root / "integrations").rglob("*.py")
    ):
        rel = path.relative_to(root).as_posix()

        def visit(node: ast.AST, func: str, rel: str = rel) -> None:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                func = node.name  # the innermost function holding the loop
            if isinstance(node, ast.For | ast.comprehension):
                names = {n.id for n in ast.walk(node.iter) if isinstance(n, ast.Name)}
                attrs = {n.attr for n in ast.walk(node.iter) if isinstance(n, ast.Attribute)}
                if "targets" in names | attrs or "_targets" in attrs:
                    places.append((rel, func))
            for child in ast.iter_child_nodes(node):
                visit(child, func)

        visit(ast.parse(path.read_text()), "<module>")
    assert sorted(set(places)) == [
        ("workflow_traces/core/trace.py", "log"),
        ("workflow_traces/pipeline/fanout.py", "offer_after"),  # offer_all's rest after a refusal
        ("workflow_traces/pipeline/fanout.py", "offer_all"),
    ]
