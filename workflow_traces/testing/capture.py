"""Capturing records in memory, for users' own tests (after structlog's ``capture_logs``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from workflow_traces.core.record import RecordValues, as_record
from workflow_traces.pipeline.fanout import Tap
from workflow_traces.pipeline.multi import TAPS
from workflow_traces.testing.memory import MemoryRecords

__all__ = ["CapturedRecords", "capture_traces"]


class CapturedRecords(MemoryRecords, Tap):
    """The records captured so far, in the order they were logged (read them as a memory
    sink's: ``messages``, ``events``, ``for_run``, ``record_ids``)."""

    def offer(self, rec: RecordValues) -> None:
        self.append(as_record(rec))  # list.append is atomic: safe from any thread, and no I/O

    def offer_nowait(self, rec: RecordValues) -> bool:
        self.offer(rec)
        return True


@contextmanager
def capture_traces() -> Iterator[CapturedRecords]:
    """Every trace and MultiHandler made inside the ``with`` block also appends its records to
    the yielded list, besides its own sinks::

        with capture_traces() as captured:
            run_my_pipeline()
        assert "loaded 3 rows" in captured.messages
    """
    captured = CapturedRecords()
    TAPS.append(captured)
    try:
        yield captured
    finally:
        TAPS.remove(captured)
