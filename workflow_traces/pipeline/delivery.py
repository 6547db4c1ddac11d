"""Delivery guarantees for network sinks, shared by every exporter: retries, batch splitting on
413, a circuit breaker, and the spool (and, in :func:`export_with_retries`, the plain retries of
local sinks).

A channel whose retry policy ``holds_on_outage`` (``NetworkRetryPolicy``) hands each batch to a
:class:`Delivery` on its worker thread:

- A batch is sent; retryable failures (connection errors, timeouts, 408, 429, 5xx) are retried
  with the policy's jittered backoff and ``Retry-After``, never past ``close()``'s deadline.
  Permanent failures (400, 401, 403, ...) are counted as failed and reported, not retried. A 413
  splits the batch in halves.
- When a batch has used up its retries the circuit breaker opens: the service is not hammered
  any more but probed every ``probe_delay`` seconds, and the batch is not given up. Without a
  spool it waits in memory while new records wait in the channel's bounded buffer; flush()
  callers are released with the outage reported. With a spool, the batch and every record that
  follows go to disk until the spool is drained, oldest first, once a probe succeeds.
- At close, without a spool, records still unsent at the deadline are counted as failed; with
  a spool they stay on disk and the next process sends them.

The channel and its Delivery meet through :class:`DeliveryHost` (what the Delivery needs of the
channel, which the channel implements) and the sink's :class:`~.health.SinkCounters`, which
both count through; neither reads the other's private members.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from workflow_traces.core.record import Record
from workflow_traces.diagnostics import report
from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.pipeline.health import SinkCounters
from workflow_traces.pipeline.retry import RetryPolicy

if TYPE_CHECKING:
    from workflow_traces.pipeline.spool import Spool

__all__ = ["CircuitBreaker", "Delivery", "DeliveryHost", "OutageError", "export_with_retries"]

#: Records per request when sending back what the spool holds.
SPOOL_CHUNK = 1000


class OutageError(Exception):
    """A sink's service is unavailable; its records are held (in memory or on disk)."""


class CircuitBreaker:
    """Open after a batch used up its retries; probe every ``policy.probe_delay`` seconds."""

    def __init__(self, name: str, policy: RetryPolicy) -> None:
        self.name = name
        self.policy = policy
        self.open = False
        self.probes = 0
        self.next_probe = 0.0
        self.error: BaseException | None = None

    def trip(self, exc: BaseException) -> None:
        """A batch (or a probe) failed for a reason that may pass: wait before the next probe."""
        if self.open:
            self.probes += 1
        else:
            self.open = True
            self.probes = 0
            report(
                f"circuit-open:{self.name}",
                f"workflow-traces: sink {self.name} is unavailable ({type(exc).__name__}: "
                f"{exc}); holding its records and probing the service now and then",
            )
        self.error = exc
        self.next_probe = time.monotonic() + self.policy.probe_delay(exc, self.probes)

    def reset(self) -> None:
        if self.open:
            self.open = False
            self.probes = 0
            self.error = None
            report(
                f"circuit-closed:{self.name}",
                f"workflow-traces: sink {self.name} is reachable again; sending held records",
                logging.INFO,
            )

    def until_probe(self) -> float:
        """Seconds before the next probe may go out (0 when closed or due)."""
        if not self.open:
            return 0.0
        return max(0.0, self.next_probe - time.monotonic())


class DeliveryHost(Protocol):
    """What a :class:`Delivery` needs of the channel it sends for (``Channel`` implements it).

    All of it is called on the channel's worker thread, the one the Delivery runs on."""

    #: The sink's name, for reports.
    name: str
    #: What the Delivery sends with.
    exporter: Exporter
    #: The sink's counters: the Delivery counts what it writes, fails and drops there.
    counters: SinkCounters
    #: Records per batch (also per chunk taken back from the spool, at least).
    batch_records: int

    @property
    def closed(self) -> bool:
        """``close()`` was called: make one last try for held records, then stop."""
        ...

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` by which ``close()`` must return, once it was called."""
        ...

    def abandoned(self) -> bool:
        """``close()`` ran out of time: stop retrying and give up what is held."""
        ...

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` before a retry; cut short when the channel is abandoned."""
        ...

    def wait_for_kick(self, seconds: float) -> None:
        """Wait ``seconds`` for the next probe; cut short by a flush() or close() request."""
        ...

    def buffer_half_full(self) -> bool:
        """Whether the channel's buffer is half full: time to move records to the spool
        rather than send the spool's backlog."""
        ...

    def queued_records(self) -> int:
        """Records in the channel's buffer now (a snapshot)."""
        ...

    def release_flushers(self, exc: BaseException) -> None:
        """Let ``flush()`` callers go, with ``exc`` (the outage) reported to them; a
        ``close()`` keeps waiting until its deadline."""
        ...


def export_with_retries(host: DeliveryHost, policy: RetryPolicy, batch: list[Record]) -> None:
    """The send side of a local sink (file, SQLite, a foreign handler): ``batch`` is exported,
    what the exporter hands back for retry is retried after the policy's delay, and given up
    (counted as failed) once the policy says so or ``close()`` ran out of time."""
    counts = host.counters
    attempt = 0
    while batch:
        try:
            result: ExportResult | None = host.exporter.export(batch)
        except Exception as exc:
            result = ExportResult(retry=batch, error=exc)
        if result is None:
            counts.wrote(len(batch))
            return
        counts.wrote(len(batch) - len(result.retry) - result.rejected)
        if result.rejected:
            counts.fail(result.error or RuntimeError("records rejected"), result.rejected)
        batch = list(result.retry)
        if not batch:
            return
        err = result.error or RuntimeError("export failed")
        delay = policy.delay(err, attempt)
        if delay is None or host.abandoned():
            counts.fail(err, len(batch))
            return
        attempt += 1
        host.pause(delay)


class Delivery:
    """The send side of one network sink's worker. Used only on that worker thread."""

    def __init__(self, channel: DeliveryHost, policy: RetryPolicy) -> None:
        self.ch = channel
        self.counts = channel.counters
        self.policy = policy
        self.breaker = CircuitBreaker(channel.name, policy)
        self.spool: Spool | None = None
        if policy.spool_dir:
            from workflow_traces.pipeline.spool import Spool

            self.spool = Spool(policy.spool_dir, channel.name, policy.spool_max_bytes)
        #: Records held in memory by the worker during an outage (health summary).
        self.held = 0
        self._final_probe = False

    # -- what the channel calls ------------------------------------------------------------
    def export(self, batch: list[Record]) -> None:
        """Deliver ``batch``, or keep it (memory or spool) while the service is unavailable."""
        ch = self.ch
        spool = self.spool
        if spool is not None and (self.breaker.open or spool.has_backlog()):
            self._to_spool(batch, self.breaker.error)  # behind what waits already: oldest first
            self.pump()
            return
        if ch.abandoned() and self.breaker.open:
            self.counts.fail(self._outage(self.breaker.error, len(batch)), len(batch))
            return
        pending, err = self._send(batch)
        if not pending:
            return
        self.breaker.trip(err)
        self.counts.saw(err)
        if spool is not None:
            self._to_spool(pending, err)
            return
        self._hold(pending, err)

    def pump(self) -> None:
        """Send what the spool holds, oldest first, while the breaker lets us."""
        spool = self.spool
        if spool is None:
            return
        ch = self.ch
        while spool.has_backlog():
            if ch.abandoned() or self.breaker.until_probe() > 0:
                return
            if ch.buffer_half_full():
                return  # let the worker move new records to disk before the buffer fills
            try:
                chunk = spool.take(max(SPOOL_CHUNK, ch.batch_records))
            except OSError as exc:
                self.counts.fail(exc, 0)
                return
            if chunk is None:
                return
            if not chunk.records:
                spool.ack(chunk)
                continue
            pending, err = self._send(chunk.records, probe=self.breaker.open, taken=False)
            if pending:
                # Kept on disk as it is; the part that went through may be sent again later.
                self.breaker.trip(err)
                self.counts.note(self._outage(err, spool.records))
                return
            spool.ack(chunk)

    def finish(self) -> None:
        """At close: one last try for what the spool holds, within close()'s deadline."""
        if self.spool is None:
            return
        if self.spool.has_backlog() and self.breaker.open and not self.ch.abandoned():
            self.breaker.next_probe = 0.0  # probe once now rather than wait
        self.pump()
        if self.spool.has_backlog():
            report(
                f"spool-left:{self.ch.name}",
                f"workflow-traces: sink {self.ch.name} closed with {self.spool.records} "
                f"records in its spool {str(self.spool.dir)!r}; they are sent on the next start",
            )

    def next_wait(self, interval: float) -> float:
        """How long the worker may sleep: shorter when a spool probe is due sooner."""
        if self.spool is not None and self.spool.has_backlog():
            if self.breaker.open:
                return max(0.01, min(interval, self.breaker.until_probe()))
            return min(interval, 0.05)
        return interval

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()

    def after_fork(self) -> None:
        if self.spool is not None:
            self.spool.after_fork()
        self.held = 0

    # -- the pieces ------------------------------------------------------------------------
    def _outage(self, err: BaseException | None, count: int) -> OutageError:
        where = "on disk" if self.spool is not None else "in memory"
        cause = "no response" if err is None else f"{type(err).__name__}: {err}"
        exc = OutageError(f"service unavailable ({cause}); {count} records held {where}")
        exc.__cause__ = err
        return exc

    def _to_spool(self, records: list[Record], err: BaseException | None) -> None:
        assert self.spool is not None
        ch = self.ch
        try:
            written = self.spool.write(records)
        except OSError as exc:
            report(
                f"spool-error:{ch.name}",
                f"workflow-traces: sink {ch.name} cannot write its spool ({exc.strerror}); "
                "holding records in memory",
                logging.ERROR,
            )
            self._hold(records, err or exc)
            return
        if not written:
            self.counts.drop(len(records), taken=True)
            report(
                f"spool-full:{ch.name}",
                f"workflow-traces: sink {ch.name} dropped {len(records)} records: its spool "
                f"is full ({self.spool.max_bytes} bytes)",
                logging.ERROR,
            )
            self.counts.note(OutageError(f"spool full: {len(records)} records dropped"))
            return
        self.counts.spooled(len(records))
        if self.breaker.open:
            self.counts.note(self._outage(err, self.spool.records))

    def _hold(self, records: list[Record], err: BaseException) -> None:
        """Keep ``records`` in memory and probe until they go through or close() gives up."""
        ch = self.ch
        self.held = len(records)
        try:
            while True:
                ch.release_flushers(self._outage(err, self.held + ch.queued_records()))
                if ch.abandoned():
                    self.counts.fail(self._outage(err, len(records)), len(records))
                    return
                if ch.closed and not self._final_probe:
                    self._final_probe = True
                    self.breaker.next_probe = 0.0
                wait = self.breaker.until_probe()
                if wait > 0:
                    ch.wait_for_kick(wait)
                    continue
                pending, new_err = self._send(records, probe=True)
                if not pending:
                    return
                records, err = pending, new_err
                self.held = len(records)
                self.breaker.trip(err)
                self.counts.saw(err)
        finally:
            self.held = 0

    def _send(
        self, batch: list[Record], probe: bool = False, taken: bool = True
    ) -> tuple[list[Record], BaseException]:
        """Send ``batch`` with retries. Returns the records not sent because the service is
        unavailable (empty when all went through or failed for good) and the last error.
        ``taken``: the records came from the channel's buffer (False: from the spool)."""
        counts = self.counts
        ch = self.ch
        policy = self.policy
        parts: deque[list[Record]] = deque([batch])
        attempt = 0
        last: BaseException = RuntimeError("export failed")
        while parts:
            part = parts.popleft()
            try:
                result = ch.exporter.export(part)
            except Exception as exc:
                result = ExportResult(retry=list(part), error=exc)
            if result is None:
                counts.wrote(len(part), taken=taken)
                self.breaker.reset()
                continue
            counts.wrote(len(part) - len(result.retry) - result.rejected, taken=taken)
            err = result.error or RuntimeError("export failed")
            retry = list(result.retry)
            if not retry:
                # The service answered: close the breaker before counting the rejected records,
                # so health() never shows them failed while the breaker still reads open.
                self.breaker.reset()
            if result.rejected:
                counts.fail(err, result.rejected, taken=taken)
            if not retry:
                continue
            last = err
            if policy.splits(err):
                self.breaker.reset()  # the service answered
                if len(retry) == 1:
                    counts.fail(err, 1, taken=taken)
                else:
                    mid = len(retry) // 2
                    parts.appendleft(retry[mid:])
                    parts.appendleft(retry[:mid])
                continue
            if not policy.retryable(err):
                self.breaker.reset()  # the service answered: it is up, the records are bad
                counts.fail(err, len(retry), taken=taken)
                continue
            delay = None if probe else policy.delay(err, attempt)
            deadline = ch.deadline
            if (
                delay is None
                or ch.abandoned()
                or (deadline is not None and time.monotonic() + delay > deadline)
            ):
                rest = [rec for p in parts for rec in p]
                return retry + rest, err
            attempt += 1
            parts.appendleft(retry)
            ch.pause(delay)
        return [], last
