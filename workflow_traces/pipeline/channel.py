"""A sink's bounded buffer and its worker thread.

The caller's side (:meth:`Channel.offer`) is a length check, a deque append and, when a batch is
due, an event set: no lock, no formatting, no I/O. The worker takes batches by count, by
approximate bytes and by ``flush_interval``, hands them to the exporter, retries what can succeed
later, and keeps the health counters. One channel never waits on another.

Network sinks (a retry policy that ``holds_on_outage``) send through a ``Delivery`` (see
``_delivery``): circuit breaker, 413 splitting and the optional disk spool. Their records are not
given up while the service is merely down.

Lifecycle, after OpenTelemetry's batch processor: one atexit hook flushes every live channel
under one shared deadline (registered with the first channel, removed with the last); after
``os.fork()`` the child clears the parent's pending records and starts its own worker.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import workflow_traces.exporters.base as _exporter
from workflow_traces.core.record import RecordValues, as_record
from workflow_traces.diagnostics import report
from workflow_traces.errors import PermanentError, TraceClosedError
from workflow_traces.exporters.base import Exporter, ExportResult

if TYPE_CHECKING:
    from workflow_traces.pipeline.delivery import Delivery

__all__ = [
    "EXIT_FLUSH_TIMEOUT",
    "Channel",
    "RetryPolicy",
    "SinkHealth",
    "Tap",
    "exiting",
    "flush_all",
    "offer_all",
]

#: Seconds that the exit hook waits, in all, for every sink to write what it holds.
EXIT_FLUSH_TIMEOUT = 10.0

Overflow = Literal["block", "drop"]

#: Records at least this big (approximate encoded bytes) count towards a sink's byte budget
#: (``wake_bytes``), so a run of huge messages wakes the worker before memory runs away.
_BIG = 64 * 1024
#: No record is estimated smaller than this (see Trace._record), which bounds a batch by bytes.
_MIN_SIZE = 256
_NO_LIMIT = 1 << 62
_size_of = itemgetter(-1)


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
    #: "running", "circuit_open", "closed", or "unavailable": a configured sink that could
    #: not be built (``last_error`` says why), whose records are counted as dropped.
    state: str = "running"


#: Records a sink's buffer holds at most, by default (a sink's ``queue_size``).
DEFAULT_QUEUE_SIZE = 200_000


class RetryPolicy:
    """When to try a failed batch again. The default suits local sinks: two quick retries,
    then the batch is counted as failed. Network sinks use ``_retry.NetworkRetryPolicy``."""

    #: Whether a batch still failing after ``max_retries`` waits for the service (circuit
    #: breaker, see ``_delivery``) instead of being given up.
    holds_on_outage = False
    #: Folder where a network sink keeps records it cannot send now; None = memory only.
    spool_dir: str | None = None
    spool_max_bytes: int = 0

    def __init__(self, max_retries: int = 2, base_delay: float = 0.05, max_delay: float = 1.0):
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay

    def delay(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up (at once for
        a PermanentError: sending again cannot help)."""
        if attempt >= self.max_retries or isinstance(exc, PermanentError):
            return None
        return float(min(self.max_delay, self.base_delay * (2**attempt)))

    def retryable(self, exc: BaseException) -> bool:
        """Whether sending again may succeed (False: the records are failed at once)."""
        return True

    def splits(self, exc: BaseException) -> bool:
        """Whether ``exc`` asks for the batch to be split in halves (HTTP 413)."""
        return False

    def probe_delay(self, exc: BaseException, probes: int) -> float:
        """Seconds between probes of a service whose circuit breaker is open."""
        return self.max_delay


class Tap:
    """A target that is not a Channel (an in-memory tap, a closed handler's stand-in): it
    always takes the ``offer`` path of :func:`offer_all`."""

    _dq: tuple[()] = ()
    wake_records = 0

    def offer(self, rec: RecordValues) -> None:
        raise NotImplementedError

    def offer_nowait(self, rec: RecordValues) -> bool:
        self.offer(rec)
        return True


#: A sink as its owners hold it: (level, its buffer, the Channel or Tap). The buffer is held
#: beside its channel because reading ``ch._dq`` for every record and sink cost the caller
#: about a fifth of each sink's share; a Channel keeps the same deque for its whole life (a
#: forked child clears it in place).
Target = tuple[int, Any, Any]


def target(level: int, ch: Any) -> Target:
    """``ch`` (a Channel or Tap) as a target of its owners' loops."""
    return (level, ch._dq, ch)


def offer_all(
    targets: tuple[Target, ...], rec: RecordValues, levelno: int, full: list[Any] | None = None
) -> None:
    """The fan-out: queue ``rec`` on every target whose level admits ``levelno``. Every way in
    comes here (through ``MultiHandler.offer``), but for the one copy inlined in the hot path
    (``core.trace._log_call``).

    ``Channel.offer``'s common case is inlined, one function call for all the sinks instead of
    one per sink: while a buffer holds fewer than its channel's ``wake_records`` records, a
    small record is appended to it directly (nothing to wake, no room to check); otherwise
    ``offer`` decides (wake the worker, apply the overflow policy, refuse after close).

    With ``full`` (a list), nothing blocks: a sink whose buffer is full under the "block"
    policy is appended to ``full`` instead (``offer_nowait``), for the caller to wait on it
    elsewhere (the async calls wait off the event loop).

    A sink closed on its own raises TraceClosedError: the sinks after it still take ``rec``
    (see :func:`offer_after`), then the error reaches the caller."""
    try:
        if full is None and rec[-1] < _BIG:  # its size
            for lvl, dq, ch in targets:
                if levelno >= lvl:
                    if len(dq) < ch.wake_records:
                        dq.append(rec)
                    else:
                        ch.offer(rec)
        elif full is None:
            for lvl, _, ch in targets:
                if levelno >= lvl:
                    ch.offer(rec)
        else:
            for lvl, _, ch in targets:
                if levelno >= lvl and not ch.offer_nowait(rec):
                    full.append(ch)
    except TraceClosedError:
        offer_after(targets, ch, rec, levelno, full)
        raise


def offer_after(
    targets: tuple[Target, ...],
    refused_by: Any,
    rec: RecordValues,
    levelno: int,
    full: list[Any] | None = None,
) -> None:
    """The rest of a fan-out that ``refused_by`` (a closed sink) interrupted: ``rec`` goes to
    the targets after it. Later refusals are not raised again: the caller hears of one."""
    sinks = [t[2] for t in targets]
    if refused_by in sinks:  # (the targets may have been remade since)
        with contextlib.suppress(TraceClosedError):
            offer_all(targets[sinks.index(refused_by) + 1 :], rec, levelno, full)


class _Waiter:
    """A caller blocked on a full buffer, holding its record until the worker places it."""

    __slots__ = ("placed", "ready", "rec")

    def __init__(self, rec: RecordValues) -> None:
        self.rec = rec
        self.placed = False
        self.ready = threading.Event()


class _Marker:
    """Put in the buffer by flush(); set once everything before it has been handled."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


class Channel:
    """One sink's bounded buffer and worker."""

    def __init__(
        self,
        exporter: Exporter,
        *,
        batch_records: int = 1000,
        batch_bytes: int = _NO_LIMIT,
        flush_interval: float = 1.0,
        capacity: int = DEFAULT_QUEUE_SIZE,
        overflow: Overflow = "block",
        block_timeout: float = 1.0,
        wake_bytes: int = 64 << 20,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.exporter = exporter
        self.name = exporter.name
        # An exporter may take a backlog ``group`` batches at a time: the SQLite sink writes
        # them in one transaction, the file sink in one write per file (group commit).
        group = max(1, getattr(exporter, "group", 1))
        self._batch_records = max(1, batch_records) * group
        self._batch_bytes = min(_NO_LIMIT, max(1, batch_bytes) * group)
        self._interval = flush_interval
        self._capacity = capacity
        self._overflow = overflow
        self._block_timeout = block_timeout
        # The worker wakes every flush_interval, or early once the buffer is 3/4 full (or holds
        # about wake_bytes), so a burst is absorbed without the worker competing with the caller
        # for the GIL; then it writes in batches of batch_records / batch_bytes.
        #: Below this many queued records an owner may append straight to the buffer (see
        #: ``offer_all``); 0 once closed, so every offer takes the slow path.
        self.wake_records = max(1, capacity * 3 // 4)
        self._wake_bytes = wake_bytes
        self._retry = retry or RetryPolicy()
        self._written = 0
        self._failed = 0
        self._dropped = 0
        self._last_error: BaseException | None = None
        self._errors: list[BaseException] = []
        self._closed = False
        self._deadline: float | None = None
        self._waiting: set[_Marker] = set()
        #: Exporters that index plain value tuples skip the wrap into Record (see _take).
        self._takes_values: bool = getattr(exporter, "takes_values", False)
        self._delivery: Delivery | None = None
        if self._retry.holds_on_outage:
            from workflow_traces.pipeline.delivery import Delivery

            self._delivery = Delivery(self, self._retry)
        #: The same deque for the channel's whole life: owners hold it (see ``target``).
        self._dq: deque[RecordValues | _Marker] = deque()
        self._init_runtime()
        _register(self)

    # -- set-up, also after fork -------------------------------------------------------------
    def _init_runtime(self) -> None:
        self._markers = 0  # flush markers in the buffer (see _take)
        self._pending_bytes = 0
        self._wake = threading.Event()
        self._abandon = threading.Event()
        self._kick = threading.Event()  # flush or close requested: a waiting worker looks up
        self._space = threading.Lock()  # guards _blocked
        self._blocked: deque[_Waiter] = deque()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"workflow-traces:{self.name}", daemon=True
        )
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        if self._closed:
            return
        _exporter.after_fork(self.exporter)
        if self._delivery is not None:
            self._delivery.after_fork()
        self._waiting = set()
        self._dq.clear()  # the parent's records, which the parent writes
        self._init_runtime()

    # -- the caller's side ---------------------------------------------------------------------
    def offer(self, rec: RecordValues) -> None:
        """Queue ``rec`` for writing. Never does I/O; blocks only under the "block" policy when
        the buffer is full, and then at most ``block_timeout`` seconds."""
        dq = self._dq
        if len(dq) < self.wake_records and rec[-1] < _BIG:  # rec.size: the common case
            dq.append(rec)
            return
        self._offer_slow(rec)

    def _offer_slow(self, rec: RecordValues) -> None:
        # The buffer is 3/4 full, or the record is big: account for its bytes, wake the worker
        # when due, and apply the overflow policy when the buffer is full.
        dq = self._dq
        queued = len(dq)
        if queued >= self._capacity:
            self._full(rec, self._overflow == "block")
            return
        dq.append(rec)
        if rec[-1] >= _BIG:
            self._pending_bytes += rec[-1]
        if (queued >= self.wake_records or self._pending_bytes >= self._wake_bytes) and (
            not self._wake.is_set()
        ):
            self._wake.set()

    def offer_nowait(self, rec: RecordValues) -> bool:
        """Queue ``rec`` if there is room now; False (nothing queued) when the buffer is full."""
        if len(self._dq) >= self._capacity:
            if self._overflow == "drop":
                self._full(rec, False)
                return True
            return False
        self.offer(rec)
        return True

    def _full(self, rec: RecordValues, block: bool) -> None:
        if self._closed:
            with self._lock:
                self._dropped += 1
            raise TraceClosedError(f"sink {self.name} is closed: the record was not written")
        if block and threading.current_thread() is not self._thread:
            # Wait in line: the worker moves blocked callers' records into the room it frees,
            # first come first served, so callers still running cannot take their turn (they
            # did, and under load a caller waited out block_timeout while others went on).
            waiter = _Waiter(rec)
            with self._space:
                if len(self._dq) < self._capacity and not self._blocked:
                    self._dq.append(rec)
                    return
                self._blocked.append(waiter)
            self._wake.set()
            waiter.ready.wait(self._block_timeout)
            with self._space:
                if waiter.placed:
                    return
                self._blocked.remove(waiter)
        with self._lock:
            self._dropped += 1
        report(
            f"drop:{self.name}",
            f"workflow-traces: sink {self.name} dropped a record: its buffer of "
            f"{self._capacity} records is full (overflow={self._overflow!r})",
        )

    # -- flushing and closing ------------------------------------------------------------------
    def request_flush(self, stop: bool = False) -> _Marker:
        """Put a marker behind everything queued so far, and wake the worker."""
        marker = _Marker(stop)
        with self._lock:
            self._markers += 1  # before it is queued: the worker looks for markers by this count
            if self._delivery is not None:
                self._waiting.add(marker)
        self._dq.append(marker)
        self._wake.set()
        self._kick.set()
        return marker

    def wait(self, marker: _Marker, timeout: float | None) -> bool:
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
            self._closed = True
            self._capacity = 0  # every later offer() takes the slow path, which refuses it
            self.wake_records = 0
        self._deadline = None if timeout is None else time.monotonic() + timeout
        marker = self.request_flush(stop=True)
        if not self.wait(marker, timeout):
            # Out of time: stop retrying, let the worker give up what it holds.
            self._abandon.set()
            self._wake.set()
            self._kick.set()
            marker.done.wait(1.0)
        self._thread.join(1.0)
        # A copy: the worker may still be popping, if it overran the deadline.
        lost = sum(1 for item in list(self._dq) if not isinstance(item, _Marker))
        if lost:
            self._dq.clear()
            with self._lock:
                self._dropped += lost
                self._errors.append(RuntimeError(f"closed with {lost} records unwritten"))
                del self._errors[:-1]
            report(
                f"lost:{self.name}",
                f"workflow-traces: sink {self.name} closed with {lost} records unwritten",
                logging.ERROR,
            )
        _unregister(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def take_error(self) -> BaseException | None:
        """The last failure since the previous call, or None; clears it."""
        with self._lock:
            if not self._errors:
                return None
            err = self._errors[-1]
            self._errors.clear()
            return err

    def queued_records(self) -> int:
        """Records in the buffer now (a snapshot)."""
        return sum(1 for item in list(self._dq) if not isinstance(item, _Marker))

    def health(self) -> SinkHealth:
        last = self._last_error
        delivery = self._delivery
        spool = None if delivery is None else delivery.spool
        circuit_open = False if delivery is None else delivery.breaker.open
        return SinkHealth(
            name=self.name,
            written=self._written,
            dropped=self._dropped,
            failed=self._failed,
            queued=self.queued_records() + (0 if delivery is None else delivery.held),
            last_error=None if last is None else f"{type(last).__name__}: {last}",
            spooled=0 if spool is None else spool.records,
            circuit_open=circuit_open,
            state="closed" if self._closed else "circuit_open" if circuit_open else "running",
        )

    # -- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        dq = self._dq
        wake = self._wake
        delivery = self._delivery
        stopped = False
        while not stopped:
            wake.wait(self._interval if delivery is None else delivery.next_wait(self._interval))
            wake.clear()
            self._pending_bytes = 0
            if delivery is not None:
                delivery.pump()
            while dq:
                batch, marker = self._take()
                if self._blocked:
                    self._place_blocked()
                if batch:
                    # Callers queue plain tuples of a record's values (see Trace._record).
                    self._export(batch if self._takes_values else list(map(as_record, batch)))
                if marker is not None:
                    try:
                        _exporter.flush(self.exporter)
                    except Exception as exc:
                        self._note(exc)
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
            self._fail(exc, 0)

    def _take(self) -> tuple[list[RecordValues], _Marker | None]:
        """The next batch from the buffer, and the flush marker that ends it, if one does.

        Pops a whole batch in one comprehension rather than one record at a time: the worker
        holds the GIL for all of its Python work, and with several sinks that work adds up.
        What a cut by bytes or a marker leaves over goes back to the front, in order (only the
        worker takes from the front; callers append at the back)."""
        dq = self._dq
        popleft = dq.popleft
        n = min(len(dq), self._batch_records, self._batch_bytes // _MIN_SIZE + 1)
        items: list[Any] = [popleft() for _ in range(n)]
        cut = n
        marker: _Marker | None = None
        if self._markers:  # read after popping: a marker counts itself before it is queued
            types = list(map(type, items))
            if _Marker in types:
                cut = types.index(_Marker)
                marker = items[cut]
        if self._batch_bytes < _NO_LIMIT:
            sizes = list(accumulate(map(_size_of, items[:cut])))
            k = bisect_left(sizes, self._batch_bytes) + 1  # the record that reaches the limit
            if k < cut:
                cut, marker = k, None
        rest = items[cut + 1 :] if marker is not None else items[cut:]
        if rest:
            dq.extendleft(reversed(rest))
        return items[:cut], marker

    def _place_blocked(self) -> None:
        """Move blocked callers' records into the room just freed, in the order they came."""
        dq, capacity = self._dq, self._capacity
        with self._space:
            waiting = self._blocked
            while waiting and len(dq) < capacity:
                waiter = waiting.popleft()
                dq.append(waiter.rec)
                waiter.placed = True
                waiter.ready.set()

    def _export(self, batch: list[Any]) -> None:
        if self._delivery is not None:
            self._delivery.export(batch)
            return
        attempt = 0
        while batch:
            try:
                result: ExportResult | None = self.exporter.export(batch)
            except Exception as exc:
                result = ExportResult(retry=batch, error=exc)
            if result is None:
                self._written += len(batch)
                return
            self._written += len(batch) - len(result.retry) - result.rejected
            if result.rejected:
                self._fail(result.error or RuntimeError("records rejected"), result.rejected)
            batch = result.retry
            if not batch:
                return
            err = result.error or RuntimeError("export failed")
            delay = self._retry.delay(err, attempt)
            if delay is None or self._abandon.is_set():
                self._fail(err, len(batch))
                return
            attempt += 1
            self._abandon.wait(delay)

    def _note(self, exc: BaseException) -> None:
        """Remember ``exc`` for the next flush()/close() (and the health summary) without
        counting records as failed: used while records are held through an outage."""
        with self._lock:
            self._last_error = exc
            self._errors.append(exc)
            del self._errors[:-1]

    def _release_waiters(self, exc: BaseException) -> None:
        """Let flush() callers go while the service is unavailable, with ``exc`` reported. A
        close() keeps waiting (until its deadline)."""
        with self._lock:
            waiting = [m for m in self._waiting if not m.stop]
            self._waiting.difference_update(waiting)
        if waiting:
            self._note(exc)
            for marker in waiting:
                marker.done.set()

    def _fail(self, exc: BaseException, count: int) -> None:
        with self._lock:
            self._failed += count
            self._last_error = exc
            self._errors.append(exc)
            del self._errors[:-1]
        report(
            f"fail:{self.name}:{type(exc).__name__}",
            f"workflow-traces: sink {self.name} failed to write {count} records: "
            f"{type(exc).__name__}: {exc}",
            logging.ERROR,
        )


# -- process-wide lifecycle: one exit hook, fork safety --------------------------------------------
_live: weakref.WeakSet[Channel] = weakref.WeakSet()
_live_lock = threading.Lock()
_hook_registered = False
_exiting = False


def exiting() -> bool:
    """True once the interpreter runs its exit hooks. Sink failures are then reported, not
    raised: an exception in ``logging.shutdown`` stops it before it flushes the other
    handlers."""
    return _exiting


def _mark_exiting() -> None:
    global _exiting
    _exiting = True


# Registered at import, so it runs after the flush hook below and before logging.shutdown
# (atexit runs hooks last-registered first; logging registered its own when imported).
atexit.register(_mark_exiting)


def _register(ch: Channel) -> None:
    global _hook_registered
    with _live_lock:
        _live.add(ch)
        if not _hook_registered:
            atexit.register(_at_exit)
            _hook_registered = True
            _mp_exit_hook()  # a channel made inside a multiprocessing child


def _unregister(ch: Channel) -> None:
    global _hook_registered
    with _live_lock:
        _live.discard(ch)
        if not _live and _hook_registered:
            atexit.unregister(_at_exit)
            _hook_registered = False


def flush_all(channels: list[Channel], timeout: float | None) -> list[Channel]:
    """Flush several channels under one shared deadline; returns those that ran out of time."""
    markers = [(ch, ch.request_flush()) for ch in channels if not ch.closed]
    deadline = None if timeout is None else time.monotonic() + timeout
    late = []
    for ch, marker in markers:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not ch.wait(marker, remaining):
            late.append(ch)
    return late


def _at_exit() -> None:
    with _live_lock:
        channels = list(_live)
    deadline = time.monotonic() + EXIT_FLUSH_TIMEOUT
    flush_all(channels, EXIT_FLUSH_TIMEOUT)
    for ch in channels:
        ch.close(max(0.0, deadline - time.monotonic()))


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    for ch in list(_live):
        ch._after_fork_in_child()
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        # A multiprocessing child ends with os._exit(): no atexit. Its bootstrap clears the
        # finalizers inherited from the parent, then runs the after-fork hooks: register ours.
        mp_util.register_after_fork(_MP_TOKEN, _mp_exit_hook)


class _Token:
    """Something for multiprocessing's after-fork registry to hold a weak reference to."""


_MP_TOKEN = _Token()
_mp_hook_pid = -1


def _mp_exit_hook(_token: object = None) -> None:
    """Flush every sink when a multiprocessing child exits (it skips atexit hooks)."""
    global _mp_hook_pid
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None or _mp_hook_pid == os.getpid():
        return
    _mp_hook_pid = os.getpid()
    mp_util.Finalize(None, _at_exit, exitpriority=100)


os.register_at_fork(after_in_child=_after_fork_in_child)
