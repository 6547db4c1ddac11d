"""A sink's counters and the health summary made from them.

Each record offered to a sink ends in exactly one counter: ``written`` (the exporter took it),
``dropped`` (refused because the buffer was full, or the sink closed), ``failed`` (given up:
a permanent error, retries used up, or still unsent when ``close()`` ran out of time), or it is
still ``queued`` (in the buffer, or held by the worker through an outage). The channel's worker
and the send side of a network sink (``delivery``) count through one :class:`SinkCounters`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from workflow_traces.diagnostics import report

__all__ = ["SinkCounters", "SinkHealth"]


@dataclass(frozen=True)
class SinkHealth:
    """A sink's counters since it was made."""

    name: str
    written: int
    dropped: int
    failed: int
    queued: int
    last_error: str | None
    #: Records waiting on disk in the sink's spool (network sinks with ``spool_dir``).
    spooled: int = 0
    #: True while the sink's service is unavailable and its circuit breaker is open.
    circuit_open: bool = False


class SinkCounters:
    """What happened to one sink's records, and its last error.

    ``written`` is counted by the sink's worker alone; the other counts may also come from
    callers' threads (a full buffer) and from ``close()``, under the lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.written = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: BaseException | None = None
        self._errors: list[BaseException] = []
        self.lock = threading.Lock()

    def after_fork(self) -> None:
        """In a forked child: a new lock (another thread of the parent may have held this one)."""
        self.lock = threading.Lock()

    def wrote(self, count: int) -> None:
        """``count`` records reached the exporter's destination (the worker's thread only)."""
        self.written += count

    def drop(self, count: int, error: BaseException | None = None) -> None:
        """``count`` records were refused (full buffer, closed sink, full spool). ``error``, if
        given, is what the next flush()/close() raises (not the health summary's last error)."""
        with self.lock:
            self.dropped += count
            if error is not None:
                self._errors.append(error)
                del self._errors[:-1]

    def fail(self, exc: BaseException, count: int) -> None:
        """``count`` records were given up because of ``exc``; reported at ERROR."""
        with self.lock:
            self.failed += count
            self._remember(exc)
        report(
            f"fail:{self.name}:{type(exc).__name__}",
            f"workflow-traces: sink {self.name} failed to write {count} records: "
            f"{type(exc).__name__}: {exc}",
            logging.ERROR,
        )

    def note(self, exc: BaseException) -> None:
        """Remember ``exc`` for the next flush()/close() (and the health summary) without
        counting records as failed: used while records are held through an outage."""
        with self.lock:
            self._remember(exc)

    def _remember(self, exc: BaseException) -> None:
        self.last_error = exc
        self._errors.append(exc)
        del self._errors[:-1]

    def take_error(self) -> BaseException | None:
        """The last failure since the previous call, or None; clears it."""
        with self.lock:
            if not self._errors:
                return None
            err = self._errors[-1]
            self._errors.clear()
            return err

    def health(self, queued: int, spooled: int = 0, circuit_open: bool = False) -> SinkHealth:
        last = self.last_error
        return SinkHealth(
            name=self.name,
            written=self.written,
            dropped=self.dropped,
            failed=self.failed,
            queued=queued,
            last_error=None if last is None else f"{type(last).__name__}: {last}",
            spooled=spooled,
            circuit_open=circuit_open,
        )
