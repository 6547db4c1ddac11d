"""The stand-in for configured sinks that could not be built, when none could: the trace then
writes nowhere, and says so. ``health()`` lists each such sink with its error and the state
``unavailable``, and every record logged to the trace is counted there as dropped.

It owns no thread and no buffer: a record offered to it is only counted.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from workflow_traces.core.record import RecordValues
from workflow_traces.pipeline.fanout import Tap
from workflow_traces.pipeline.handler import BufferedHandler
from workflow_traces.pipeline.health import SinkHealth

__all__ = ["UnavailableHandler", "UnavailableSink"]


class UnavailableSink(Tap):
    """Counts the records offered to a sink that does not exist, as dropped."""

    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name
        self.error = error
        self.dropped = 0
        self._lock = threading.Lock()
        self.closed = False

    def offer(self, rec: RecordValues) -> None:
        with self._lock:
            self.dropped += 1

    # The parts of a Channel that its owners use.
    def request_flush(self, stop: bool = False) -> None:
        return None

    def wait(self, marker: Any, timeout: float | None = None) -> bool:
        return True

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def take_error(self) -> BaseException | None:
        return None  # reported once when the sink was left out

    def queued_records(self) -> int:
        return 0

    def health(self) -> SinkHealth:
        return SinkHealth(
            name=self.name,
            written=0,
            dropped=self.dropped,
            failed=0,
            queued=0,
            last_error=f"{type(self.error).__name__}: {self.error}",
            state="unavailable",
        )


class UnavailableHandler(BufferedHandler):
    """A handler in place of a sink that could not be built (see the module)."""

    def __init__(self, name: str, error: BaseException, run_id: str) -> None:
        # Not BufferedHandler.__init__: there is no exporter to give a worker.
        logging.Handler.__init__(self)
        self.run_id = run_id
        self.parent_run_id = None
        self.extras = {}
        self.fail_silently = True
        self.channel = UnavailableSink(name, error)  # type: ignore[assignment]
        self.name = name
        self._owners = weakref.WeakSet()

    def emit(self, record: logging.LogRecord) -> None:
        self.channel.offer(())
