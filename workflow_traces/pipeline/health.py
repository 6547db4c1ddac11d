"""A sink's counters and the health summary made from them.

Each record logged to a sink is in exactly one counter at every moment: ``queued`` (in the
buffer, or taken by the worker and not yet settled: being sent, retried, or held through an
outage), then ``written`` (the exporter took it), ``dropped`` (refused: the buffer was full, the
sink was closed, its spool was full) or ``failed`` (given up: a permanent error, retries used
up, or still unsent when ``close()`` gave up), ``sampled`` or ``limited`` (left out by the sink's
``sample`` or ``max_records_per_second``, see ``process``). So ``written + dropped + failed +
queued + sampled + limited`` is what was logged to the sink, read at any time. A sink with a
spool also counts the records on disk (``spooled``), which may include records an earlier
process left there.

The worker counts the records it takes (``in_flight``) and settles them under one lock, so a
reading never sees a record twice or not at all. When ``close()`` gives up at its deadline it
counts what is still queued or in flight as failed and seals the counters
(:meth:`SinkCounters.give_up`): the outcome of a request still in flight then (it is
abandoned) is no longer counted. The channel's worker and the send side of a network sink
(``delivery``) count through one :class:`SinkCounters`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
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
    #: When ``last_error`` happened (seconds since the epoch, as ``time.time()``).
    last_error_at: float | None = None
    #: When the sink wrote again after ``last_error``; None while the error is current.
    recovered_at: float | None = None
    #: "running", "circuit_open", "closed", or "unavailable": a configured sink that could
    #: not be built (``last_error`` says why), whose records are counted as dropped.
    state: str = "running"
    #: Records left out by the sink's ``sample`` rates.
    sampled: int = 0
    #: Records left out by the sink's ``max_records_per_second``.
    limited: int = 0


class SinkCounters:
    """What happened to one sink's records, and its last error.

    The settling methods take ``taken``: True (the default) for records the worker took from
    the buffer (they leave ``in_flight``), False for records that were never in it (a caller's
    record refused) or come back from the spool."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.written = 0
        self.failed = 0
        self.dropped = 0
        self.sampled = 0
        self.limited = 0
        #: Records the worker took from the buffer and has not settled yet.
        self.in_flight = 0
        self.last_error: BaseException | None = None
        self.last_error_at: float | None = None
        self.recovered_at: float | None = None
        self._errors: list[BaseException] = []
        self._sealed = False
        #: Held while the worker takes a batch and while a reading is made (see Channel).
        self.lock = threading.Lock()
        # Records refused by a full buffer, counted without the lock (see ``refused``).
        self._refusals = itertools.count()
        #: Count one record refused by a full buffer, part of ``dropped``. A sink whose service
        #: is down refuses every record the caller logs, so this is one C call, atomic under the
        #: GIL: ``next`` of a counter (the lock cost the caller 0.2 µs a record more).
        self.refused: Callable[[], int] = self._refusals.__next__

    def after_fork(self) -> None:
        """In a forked child: a new lock (another thread of the parent may have held this one),
        and nothing in flight (the parent's batch is the parent's)."""
        self.lock = threading.Lock()
        self.in_flight = 0

    def _settle(self, count: int, taken: bool) -> bool:
        # Under the lock. False once close() gave up: the worker's late outcome is not counted.
        if taken:
            if self._sealed:
                return False
            self.in_flight -= count
        return True

    def took(self, count: int) -> None:
        """The worker took ``count`` records from the buffer (under the lock). After close()
        gave up, a record a racing caller slipped in is failed at once."""
        if self._sealed:
            self.failed += count
        else:
            self.in_flight += count

    def wrote(self, count: int, *, taken: bool = True) -> None:
        """``count`` records reached the exporter's destination."""
        with self.lock:
            if self._settle(count, taken):
                self.written += count
                if count and self.last_error is not None and self.recovered_at is None:
                    self.recovered_at = time.time()

    def spooled(self, count: int) -> None:
        """``count`` records taken from the buffer went to the spool (shown as ``spooled``)."""
        with self.lock:
            self._settle(count, True)

    def left_out(self, sampled: int, limited: int) -> None:
        """Records taken from the buffer were left out by sampling or the rate limit."""
        with self.lock:
            if self._settle(sampled + limited, True):
                self.sampled += sampled
                self.limited += limited

    def drop(self, count: int, *, taken: bool = False) -> None:
        """``count`` records were refused (full buffer, closed sink; ``taken``: full spool)."""
        with self.lock:
            if self._settle(count, taken):
                self.dropped += count

    def refusals(self) -> int:
        """How many records ``refused`` counted (read off the counter without advancing it:
        its repr is ``count(n)``)."""
        return int(repr(self._refusals)[6:-1])

    def fail(self, exc: BaseException, count: int, *, taken: bool = True) -> None:
        """``count`` records were given up because of ``exc``; reported at ERROR."""
        with self.lock:
            if not self._settle(count, taken):
                return
            self.failed += count
            self._remember(exc)
        report(
            f"fail:{self.name}:{type(exc).__name__}",
            f"workflow-traces: sink {self.name} failed to write {count} records: "
            f"{type(exc).__name__}: {exc}",
            logging.ERROR,
        )

    def saw(self, exc: BaseException) -> None:
        """The service failed with ``exc`` and the records are held: shown as the last error in
        the health summary, not raised by the next flush()/close() (the records may yet go
        through). Not after close() gave up: an abandoned request's late failure is not news."""
        with self.lock:
            if self._sealed:
                return
            self.last_error = exc
            self.last_error_at = time.time()
            self.recovered_at = None

    def give_up(self, buffered: int, exc: BaseException) -> int:
        """At close, out of time (under the lock, with the buffer emptied by the caller): the
        ``buffered`` records and those in flight are failed, and the counters sealed. Returns
        how many records were given up."""
        lost = buffered + self.in_flight
        self.in_flight = 0
        self._sealed = True
        if lost:
            self.failed += lost
            self._remember(exc)
        return lost

    def note(self, exc: BaseException) -> None:
        """Remember ``exc`` for the next flush()/close() (and the health summary) without
        counting records as failed: used while records are held through an outage."""
        with self.lock:
            self._remember(exc)

    def _remember(self, exc: BaseException) -> None:
        self.last_error = exc
        self.last_error_at = time.time()
        self.recovered_at = None
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

    def health(
        self, buffered: int, spooled: int = 0, circuit_open: bool = False, state: str = "running"
    ) -> SinkHealth:
        """The summary, with ``buffered`` records in the buffer (read under the lock)."""
        last = self.last_error
        return SinkHealth(
            name=self.name,
            written=self.written,
            dropped=self.dropped + self.refusals(),
            failed=self.failed,
            queued=buffered + self.in_flight,
            last_error=None if last is None else f"{type(last).__name__}: {last}",
            spooled=spooled,
            circuit_open=circuit_open,
            last_error_at=self.last_error_at,
            recovered_at=self.recovered_at,
            state=state,
            sampled=self.sampled,
            limited=self.limited,
        )
