"""A sink's bounded buffer and its worker thread.

The caller's side (:meth:`Channel.offer`) is a length check, a deque append and, when a batch is
due, an event set: no lock, no formatting, no I/O. The worker takes batches by count, by
approximate bytes and by ``flush_interval``, hands them to the exporter, retries what can succeed
later, and keeps the health counters. One channel never waits on another.

Network sinks (a retry policy that ``holds_on_outage``) send through a ``Delivery`` (see
``delivery``): circuit breaker, 413 splitting and the optional disk spool. Their records are not
given up while the service is merely down. The channel gives its Delivery the small
``DeliveryHost`` interface written down there, and both count through the sink's
``SinkCounters`` (``health``).

Before a batch goes to the exporter (or the Delivery), the worker applies the channel's
``process`` step: sampling, the rate limit and redaction (see ``process``).

The exit hook and fork safety are in ``lifecycle``; a channel registers there when it is made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Literal

import workflow_traces.exporters.base as _exporter
from workflow_traces.core.record import RecordValues, as_record
from workflow_traces.diagnostics import report
from workflow_traces.errors import TraceClosedError
from workflow_traces.exporters.base import Exporter
from workflow_traces.pipeline import lifecycle
from workflow_traces.pipeline.batching import NO_LIMIT, Marker, Waiter, take_batch
from workflow_traces.pipeline.bounds import DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_SIZE, BufferBounds
from workflow_traces.pipeline.delivery import Delivery, export_with_retries
from workflow_traces.pipeline.fanout import BIG as _BIG
from workflow_traces.pipeline.health import SinkCounters, SinkHealth
from workflow_traces.pipeline.lifecycle import exiting, flush_all
from workflow_traces.pipeline.process import RecordProcess, default_process
from workflow_traces.pipeline.retry import RetryPolicy

# RetryPolicy, SinkHealth, exiting and flush_all live in retry, health and lifecycle; they are
# named here too for the modules that import them from the channel.
__all__ = [
    "DEFAULT_QUEUE_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "Channel",
    "Overflow",
    "RetryPolicy",
    "SinkHealth",
    "exiting",
    "flush_all",
]

Overflow = Literal["block", "drop"]

#: Seconds close() gives a worker that overran the deadline to give up what it holds, before
#: close() counts it as failed itself (a worker stuck in a request never answers).
_GRACE = 0.1

#: The buffer's fill, as a fraction of its capacity, at which a caller wakes a sleeping worker.
_WAKE_FILL = 15 / 16


class Channel:
    """One sink's bounded buffer and worker."""

    def __init__(
        self,
        exporter: Exporter,
        *,
        batch_records: int = 1000,
        batch_bytes: int = NO_LIMIT,
        flush_interval: float = 1.0,
        capacity: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        overflow: Overflow = "block",
        block_timeout: float = 1.0,
        wake_bytes: int = 64 << 20,
        retry: RetryPolicy | None = None,
        process: RecordProcess | Literal["default"] | None = "default",
    ) -> None:
        self.exporter = exporter
        #: Sampling, rate limit and redaction, applied by the worker to each batch before the
        #: exporter (or the Delivery and its spool) sees it; "default": the default redaction.
        #: Set before the first record is logged (the factory sets a configured sink's).
        self.process = default_process() if isinstance(process, str) else process
        self.name = exporter.name
        # An exporter may take a backlog ``group`` batches at a time: the SQLite sink writes
        # them in one transaction, the file sink in one write per file (group commit).
        group = max(1, getattr(exporter, "group", 1))
        #: Records per batch the worker hands to the exporter.
        self.batch_records = max(1, batch_records) * group
        self._batch_bytes = min(NO_LIMIT, max(1, batch_bytes) * group)
        self._interval = flush_interval
        # The buffer's two bounds, records and bytes (see ``bounds``); ``_capacity`` is the
        # number of records they allow now, kept up to date under ``_space``.
        self._bounds = BufferBounds(capacity, queue_bytes)
        self._asleep = True
        self._overflow = overflow
        self._closed = False
        self._block_timeout = block_timeout
        # A sleeping worker wakes every flush_interval, or early once the buffer is 15/16 full
        # (or holds about wake_bytes of big records), so a burst is absorbed without the worker
        # competing with the caller for the GIL. A worker that is writing takes batch after
        # batch until the buffer is empty, and needs no waking: meanwhile callers append
        # straight up to the capacity (see _run).
        #: Below this many queued records an owner may append straight to the buffer (see
        #: ``offer_all``); 0 once closed, so every offer takes the slow path. Set, with
        #: ``_capacity`` and ``_shed_at``, by _set_limits.
        self.wake_records = 0
        self._capacity = 0
        #: At this many queued records offer() drops at once ("drop" policy; never otherwise).
        self._shed_at = NO_LIMIT
        self._set_limits()
        self._wake_bytes = wake_bytes
        #: Seconds (monotonic) before which a drop is not reported again (see _report_drop).
        self._quiet_until = 0.0
        self._retry = retry or RetryPolicy()
        self.counters = SinkCounters(self.name)
        self._deadline: float | None = None
        self._waiting: set[Marker] = set()
        #: Exporters that index plain value tuples skip the wrap into Record (see _take).
        self._takes_values: bool = getattr(exporter, "takes_values", False)
        self._delivery: Delivery | None = None
        if self._retry.holds_on_outage:
            self._delivery = Delivery(self, self._retry)
        #: The same deque for the channel's whole life: owners hold it (see ``target``).
        self._dq: deque[RecordValues | Marker] = deque()
        self._init_runtime()
        lifecycle.register(self)

    # -- set-up, also after fork -------------------------------------------------------------
    def _init_runtime(self) -> None:
        self._markers = 0  # flush markers in the buffer (see _take)
        self._pending_bytes = 0
        self._wake = threading.Event()
        self._abandon = threading.Event()
        self._kick = threading.Event()  # flush or close requested: a waiting worker looks up
        self._space = threading.Lock()  # guards _blocked
        self._blocked: deque[Waiter] = deque()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"workflow-traces:{self.name}", daemon=True
        )
        self._thread.start()

    def after_fork_in_child(self) -> None:
        """In a forked child (called by ``lifecycle``): forget the parent's records, which the
        parent writes, and start a worker of its own."""
        if self._closed:
            return
        self.counters.after_fork()
        _exporter.after_fork(self.exporter)
        if self._delivery is not None:
            self._delivery.after_fork()
        self._waiting = set()
        self._dq.clear()  # the parent's records, which the parent writes
        self._bounds.reset()
        self._asleep = True
        self._set_limits()
        self._init_runtime()

    # -- the caller's side ---------------------------------------------------------------------
    def offer(self, rec: RecordValues) -> None:
        """Queue ``rec`` for writing. Never does I/O; blocks only under the "block" policy when
        the buffer is full, and then at most ``block_timeout`` seconds."""
        dq = self._dq
        if len(dq) < self.wake_records and rec[-1] < _BIG:  # rec.size: the common case
            dq.append(rec)
            return
        if len(dq) >= self._shed_at:  # full under the "drop" policy: as cheap as can be
            self.counters.refused()
            if time.monotonic() >= self._quiet_until:  # _report_drop's check, without a call
                self._report_drop()
            return
        self._offer_slow(rec)

    def _offer_slow(self, rec: RecordValues) -> None:
        # The buffer is 15/16 full (or full, while the worker writes), or the record is big:
        # account for its bytes, wake the worker when due, and apply the overflow policy when
        # the buffer is full.
        dq = self._dq
        queued = len(dq)
        size = rec[-1]
        if self._full_for(size, queued):
            if self._overflow == "drop" and not self._closed:
                self.counters.refused()
                self._report_drop()
            else:
                self._full(rec, self._overflow == "block")
            return
        if size >= _BIG:
            with self._space:
                self._admit(rec)
        else:
            dq.append(rec)
        if (queued >= self.wake_records or self._pending_bytes >= self._wake_bytes) and (
            not self._wake.is_set()
        ):
            self._wake.set()

    def _admit(self, rec: RecordValues) -> None:
        """Queue ``rec``, a big one counted against ``queue_bytes`` first (under ``_space``)."""
        size = rec[-1]
        if size >= _BIG:
            self._bounds.add_big(size)
            self._set_limits()
            self._pending_bytes += size
        self._dq.append(rec)

    def _report_drop(self) -> None:
        """Report a drop, at most every 5 seconds: a sink whose service is down refuses every
        record the caller logs."""
        if time.monotonic() < self._quiet_until:
            return
        self._quiet_until = time.monotonic() + 5.0
        report(
            f"drop:{self.name}",
            f"workflow-traces: sink {self.name} dropped a record: its buffer of "
            f"{self._capacity} records is full (queue_size={self._bounds.queue_size}, queue_bytes="
            f"{self._bounds.queue_bytes}, overflow={self._overflow!r})",
        )

    # -- the buffer's bounds ---------------------------------------------------------------------
    def _full_for(self, size: int, queued: int) -> bool:
        """Whether a record of ``size`` finds no room beside ``queued`` records."""
        return queued >= self._capacity or (
            size >= _BIG and not self._bounds.admits_big(size, queued)
        )

    def _wake_at(self) -> int:
        return max(1, int(self._capacity * _WAKE_FILL)) if self._capacity else 0

    def _set_wake(self, *, asleep: bool) -> None:
        """The fast path's limit (``wake_records``) for a worker about to sleep, or writing."""
        with self._space:
            self._asleep = asleep
            self._set_limits()

    def _set_limits(self) -> None:
        # Under ``_space``, as close() sets them: a closed channel's limits stay 0.
        if not self._closed:
            self._capacity = self._bounds.capacity()
            self.wake_records = self._wake_at() if self._asleep else self._capacity
            self._shed_at = self._capacity if self._overflow == "drop" else NO_LIMIT

    def _measure(self, batch: list[Any]) -> None:
        """Update the byte bound's record count from ``batch``, just taken (on the worker)."""
        if batch:
            sizes = self._bounds.sizes_to_measure(batch)
            with self._space:
                self._bounds.measure(sizes)
                self._set_limits()

    def offer_nowait(self, rec: RecordValues) -> bool:
        """Queue ``rec`` if there is room now; False (nothing queued) when the buffer is full."""
        if self._full_for(rec[-1], len(self._dq)):
            if self._overflow == "drop":
                self._full(rec, False)
                return True
            return False
        self.offer(rec)
        return True

    def _full(self, rec: RecordValues, block: bool) -> None:
        if self._closed:
            self.counters.drop(1)
            raise TraceClosedError(f"sink {self.name} is closed: the record was not written")
        if block and threading.current_thread() is not self._thread:
            # Wait in line: the worker moves blocked callers' records into the room it frees,
            # first come first served, so callers still running cannot take their turn (they
            # did, and under load a caller waited out block_timeout while others went on).
            waiter = Waiter(rec)
            with self._space:
                if not self._blocked and not self._full_for(rec[-1], len(self._dq)):
                    self._admit(rec)
                    return
                self._blocked.append(waiter)
            self._wake.set()
            waiter.ready.wait(self._block_timeout)
            with self._space:
                if waiter.placed:
                    return
                self._blocked.remove(waiter)
        self.counters.drop(1)
        self._report_drop()

    # -- flushing and closing ------------------------------------------------------------------
    def request_flush(self, stop: bool = False) -> Marker:
        """Put a marker behind everything queued so far, and wake the worker."""
        marker = Marker(stop)
        with self._lock:
            self._markers += 1  # before it is queued: the worker looks for markers by this count
            if self._delivery is not None:
                self._waiting.add(marker)
        self._dq.append(marker)
        self._wake.set()
        self._kick.set()
        return marker

    def wait(self, marker: Marker, timeout: float | None) -> bool:
        """Wait until ``marker`` is reached; False if ``timeout`` ran out first."""
        if not self._thread.is_alive() and not marker.done.is_set():
            return False
        return marker.done.wait(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Return once everything queued before the call is written (or has failed for good)."""
        if self._closed:
            return True
        return self.wait(self.request_flush(), timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, stop the worker and release the exporter. Idempotent."""
        with self._lock:
            if self._closed:
                return
            with self._space:
                self._closed = True
                self._capacity = 0  # every later offer() takes the slow path, which refuses it
                self.wake_records = 0
                self._shed_at = NO_LIMIT
        deadline = None if timeout is None else time.monotonic() + timeout
        self._deadline = deadline
        marker = self.request_flush(stop=True)
        if self.wait(marker, timeout):
            # Everything was handled; the worker now releases the exporter.
            left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            self._thread.join(min(1.0, left + _GRACE))
        else:
            # Out of time: stop retrying, let the worker give up what it holds; a request in
            # flight is abandoned (the worker finishes it later, uncounted, then stops).
            self._abandon.set()
            self._wake.set()
            self._kick.set()
            if marker.done.wait(_GRACE):
                self._thread.join(_GRACE)
        self._give_up()
        lifecycle.unregister(self)

    def _give_up(self) -> None:
        """What is still queued or in flight when close() returns is counted as failed, at
        once: the counts add up the moment close() returns."""
        counters = self.counters
        with counters.lock:
            items = list(self._dq)
            markers = [item for item in items if isinstance(item, Marker)]
            buffered = len(items) - len(markers)
            if buffered:
                self._dq.clear()
                self._dq.extend(markers)  # the stop marker still ends a late worker's loop
            lost = buffered + counters.in_flight
            counters.give_up(buffered, RuntimeError(f"closed with {lost} records unwritten"))
        if lost:
            report(
                f"lost:{self.name}",
                f"workflow-traces: sink {self.name} closed with {lost} records unwritten "
                "(counted as failed)",
                logging.ERROR,
            )

    @property
    def closed(self) -> bool:
        return self._closed

    def take_error(self) -> BaseException | None:
        """The last failure since the previous call, or None; clears it."""
        return self.counters.take_error()

    def queued_records(self) -> int:
        """Records in the buffer now (a snapshot)."""
        return sum(1 for item in list(self._dq) if not isinstance(item, Marker))

    def health(self) -> SinkHealth:
        delivery = self._delivery
        with self.counters.lock:  # the worker takes batches under it: nothing counted twice
            if delivery is None:
                state = "closed" if self._closed else "running"
                return self.counters.health(self.queued_records(), state=state)
            spool = delivery.spool
            circuit_open = delivery.breaker.open
            return self.counters.health(
                self.queued_records(),
                spooled=0 if spool is None else spool.records,
                circuit_open=circuit_open,
                state="closed" if self._closed else "circuit_open" if circuit_open else "running",
            )

    # -- what the Delivery uses (DeliveryHost, see ``delivery``) -------------------------------
    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` by which ``close()`` must return, once it was called."""
        return self._deadline

    def abandoned(self) -> bool:
        """``close()`` ran out of time: stop retrying and give up what is held."""
        return self._abandon.is_set()

    def pause(self, seconds: float) -> None:
        """Wait before a retry; cut short when close() runs out of time."""
        self._abandon.wait(seconds)

    def wait_for_kick(self, seconds: float) -> None:
        """Wait for the next probe; cut short by a flush() or close() request."""
        self._kick.wait(seconds)
        self._kick.clear()

    def buffer_half_full(self) -> bool:
        return len(self._dq) >= max(1, self._capacity // 2)

    def release_flushers(self, exc: BaseException) -> None:
        """Let flush() callers go while the service is unavailable, with ``exc`` reported. A
        close() keeps waiting (until its deadline)."""
        with self._lock:
            waiting = [m for m in self._waiting if not m.stop]
            self._waiting.difference_update(waiting)
        if waiting:
            self.counters.note(exc)
            for marker in waiting:
                marker.done.set()

    # -- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        dq = self._dq
        wake = self._wake
        delivery = self._delivery
        stopped = False
        while not stopped:
            # Asleep: a caller wakes the worker once the buffer is 15/16 full. Writing: callers
            # append straight up to the capacity (nothing to wake). A caller that read the other
            # value a moment ago costs one slow offer, or a record waiting for the next wake.
            self._set_wake(asleep=True)
            wake.wait(self._interval if delivery is None else delivery.next_wait(self._interval))
            wake.clear()
            self._set_wake(asleep=False)
            self._pending_bytes = 0
            if delivery is not None:
                delivery.pump()
            while dq:
                batch, marker = self._take()
                if self._blocked:
                    self._place_blocked()
                if batch and self.process is not None:  # see ``process``
                    batch = self.process(batch, self.counters)
                if batch:
                    # Callers queue plain tuples of a record's values (see Trace._record).
                    self._export(batch if self._takes_values else list(map(as_record, batch)))
                if marker is not None:
                    try:
                        _exporter.flush(self.exporter)
                    except Exception as exc:
                        self.counters.note(exc)
                    with self._lock:
                        self._markers -= 1
                    if marker.stop:
                        stopped = True
                        if delivery is not None:
                            delivery.finish()
                    if delivery is not None:
                        with self._lock:
                            self._waiting.discard(marker)
                    marker.done.set()
                if stopped:
                    break
        try:
            if delivery is not None:
                delivery.close()
            _exporter.shutdown(self.exporter)
        except Exception as exc:
            self.counters.fail(exc, 0)

    def _take(self) -> tuple[list[RecordValues], Marker | None]:
        """The next batch from the buffer, and the flush marker that ends it, if one does (see
        ``batching.take_batch``)."""
        with self.counters.lock:  # taken and counted in flight at once (see health)
            batch, marker = take_batch(
                self._dq, self._markers, self.batch_records, self._batch_bytes
            )
            self.counters.took(len(batch))
        self._measure(batch)
        return batch, marker

    def _place_blocked(self) -> None:
        """Move blocked callers' records into the room just freed (in records and in bytes),
        in the order they came."""
        with self._space:
            waiting = self._blocked
            while waiting and not self._full_for(waiting[0].rec[-1], len(self._dq)):
                waiter = waiting.popleft()
                self._admit(waiter.rec)
                waiter.placed = True
                waiter.ready.set()

    def _export(self, batch: list[Any]) -> None:
        if self._delivery is not None:
            self._delivery.export(batch)
        else:
            export_with_retries(self, self._retry, batch)
