"""MultiHandler: one record, built once, fanned out to every sink's buffer."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from workflow_traces.core.record import Record, RecordValues, as_record
from workflow_traces.core.stdlib import log_record_values, name_defaults, user_extras
from workflow_traces.diagnostics import is_ignored, report
from workflow_traces.errors import ConfigError, SinkError, TraceClosedError
from workflow_traces.pipeline.channel import Channel, SinkHealth, exiting, flush_all
from workflow_traces.pipeline.fanout import Tap, Target, offer_after, offer_all, target
from workflow_traces.pipeline.handler import BufferedHandler, ForeignHandlerExporter

__all__ = ["MultiHandler"]

H = TypeVar("H", bound=logging.Handler)


#: In-memory taps that every MultiHandler made while they are set also feeds (see
#: ``workflow_traces.testing.capture_traces``). Each has ``offer(rec)`` and ``offer_nowait(rec)``.
TAPS: list[Any] = []


class _Closed(Tap):
    """Stands in for every sink once the MultiHandler is closed."""

    def __init__(self, owner: MultiHandler) -> None:
        self.owner = owner

    def offer(self, rec: RecordValues) -> None:
        self.owner._logged_after_close(as_record(rec))

    def offer_nowait(self, rec: RecordValues) -> bool:
        self.offer(rec)
        return True


class MultiHandler(logging.Handler):
    """A ``logging.Handler`` that sends each record to several handlers at once.

    Our sink handlers (file, SQLite, REST, Elasticsearch) take the record into their own buffer;
    any other ``logging.Handler`` is given a buffer and worker of its own, so its I/O never runs
    on the caller's thread either. Works with ``logger.addHandler`` and ``dictConfig``.

    ``handlers`` holds handler objects, or handler config dicts (``{"type": "sqlite", "path":
    ...}``, the keys ``get_trace`` takes) that are built here. From ``dictConfig``, children are
    either such dicts or ``"cfg://handlers.<name>"`` references to handlers it has already built
    (it builds them in name order, so the children's names must sort before this one's).
    """

    def __init__(
        self,
        run_id: str,
        parent_run_id: str | None = None,
        handlers: Sequence[logging.Handler | Mapping[str, Any]] | None = None,
        extras: dict[str, Any] | None = None,
        fail_silently: bool = True,
        level: int | str = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.extras: dict[str, Any] = dict(extras or {})
        self.fail_silently = fail_silently
        self._names = name_defaults(self.extras)
        self._record_extras = user_extras(self.extras)
        self.handlers: list[logging.Handler] = []
        self._channels: dict[int, Channel] = {}
        #: The sinks as the fan-out takes them (``offer_all``): (level, buffer, Channel or Tap)
        #: per sink, remade whenever a handler is added or removed, a level changes, or this
        #: handler closes. Read it; do not assign it.
        self.targets: tuple[Target, ...] = ()
        self._closed = False
        self._after_close = 0
        self._after_close_lock = threading.Lock()
        built: list[logging.Handler] = []
        try:
            for index in range(len(handlers or ())):
                # Item by item: dictConfig's lists resolve "cfg://" references on access only.
                item = handlers[index]  # type: ignore[index]
                child = self._child(item, index)
                if child is not None:
                    if child is not item:
                        built.append(child)
                    self.add_handler(child)
        except BaseException:
            for child in built:  # stop the workers of the children built here
                child.close()
            raise
        self._rebuild()  # with no handlers at all, the taps (capture_traces) still take records

    def _child(self, item: Any, index: int) -> logging.Handler | None:
        if isinstance(item, logging.Handler):
            return item
        if isinstance(item, Mapping) and "type" in item:
            from workflow_traces.settings.factory import build_child

            return build_child(
                item, index, self.run_id, self.parent_run_id, self.extras, self.fail_silently
            )
        if isinstance(item, Mapping) and ("class" in item or "()" in item):
            raise ConfigError(
                f"handlers[{index}]: that handler is not built yet; dictConfig builds handlers "
                "in name order, so give the MultiHandler a name that sorts after its children's"
            )
        raise TypeError(
            f"handlers[{index}]: expected a logging.Handler or a handler config dict with a "
            f"'type', got {type(item).__name__}"
        )

    # -- managing handlers ---------------------------------------------------------------------
    def _channel_of(self, handler: logging.Handler) -> Channel:
        if isinstance(handler, BufferedHandler):
            return handler.channel
        ch = self._channels.get(id(handler))
        if ch is None:
            ch = Channel(ForeignHandlerExporter(handler), flush_interval=0.5)
            self._channels[id(handler)] = ch
        return ch

    def _rebuild(self) -> None:
        if self._closed:
            self.targets = (target(0, _Closed(self)),)
        else:
            # Our handlers tell us when their level changes (see BufferedHandler.setLevel); any
            # other handler's level is checked on its worker, when the record is written.
            self.targets = tuple(
                target(h.level if isinstance(h, BufferedHandler) else 0, self._channel_of(h))
                for h in self.handlers
            ) + tuple(target(0, tap) for tap in TAPS)

    def add_handler(self, handler: logging.Handler) -> None:
        """Start sending records to ``handler`` too."""
        if not isinstance(handler, logging.Handler):
            raise TypeError(f"handler: expected a logging.Handler, got {type(handler).__name__}")
        if handler is self:
            raise ValueError("handler: a MultiHandler cannot contain itself")
        if handler not in self.handlers:
            self.handlers.append(handler)
            if isinstance(handler, BufferedHandler):
                handler._owners.add(self)
            self._rebuild()

    def remove_handler(self, handler: logging.Handler, timeout: float | None = 10.0) -> None:
        """Stop sending records to ``handler``, and return once what it had queued is written
        (at most ``timeout`` seconds). It is not closed: it may serve elsewhere, as with the
        stdlib's ``Logger.removeHandler``."""
        if handler in self.handlers:
            self.handlers.remove(handler)
            if isinstance(handler, BufferedHandler):
                handler._owners.discard(self)
            ch = self._channels.pop(id(handler), None)
            self._rebuild()
            if isinstance(handler, BufferedHandler):
                handler.channel.flush(timeout)
            elif ch is not None:
                if isinstance(ch.exporter, ForeignHandlerExporter):
                    ch.exporter.detach()  # our channel goes; the handler stays open
                ch.close(timeout)

    def get_handler_by_type(self, handler_type: type[H]) -> H | None:
        """The first handler that is an instance of ``handler_type``, or None."""
        for handler in self.handlers:
            if isinstance(handler, handler_type):
                return handler
        return None

    def get_handlers_by_type(self, handler_type: type[H]) -> list[H]:
        """Every handler that is an instance of ``handler_type``."""
        return [h for h in self.handlers if isinstance(h, handler_type)]

    @property
    def handler_count(self) -> int:
        return len(self.handlers)

    @property
    def handler_types(self) -> list[str]:
        return [type(h).__name__ for h in self.handlers]

    @property
    def names(self) -> tuple[str | None, str | None, str | None]:
        """The workflow, job and stage names its records default to (from ``extras``), for
        building records outside any scope (see ``core.stdlib.from_log_record``)."""
        return self._names

    # -- taking records ------------------------------------------------------------------------
    def offer(self, rec: RecordValues, levelno: int, full: list[Any] | None = None) -> None:
        """Queue ``rec`` (a Record or its plain values) on every sink whose level admits
        ``levelno``: the fan-out (``offer_all``) that every way in uses. A sink closed on its
        own refuses it (see :meth:`refused`). With ``full``, nothing blocks: sinks whose buffer
        is full under the "block" policy are put in ``full`` instead."""
        try:
            offer_all(self.targets, rec, levelno, full)
        except TraceClosedError as exc:
            self.refused(rec, exc)

    def dispatch(self, rec: Record) -> None:
        """Queue ``rec`` on every sink whose level admits it."""
        self.offer(rec, rec.levelno)

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: every sink's buffer is safe to append to from any thread.
        if is_ignored(record.name) or (self.filters and not self.filter(record)):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rec = log_record_values(
                record, self.run_id, self.parent_run_id, self._names, self._record_extras
            )
            offer_all(self.targets, rec, record.levelno)
        except TraceClosedError:
            if not self.fail_silently:
                raise
        except Exception:
            self.handleError(record)

    def refused(
        self,
        rec: RecordValues,
        exc: TraceClosedError,
        levelno: int = 0,
        refused_by: Any = None,
    ) -> None:
        """A sink closed on its own refused ``rec`` (it raised ``exc``): ``exc`` reaches the
        caller with fail_silently=False; otherwise the record is counted and reported. Given
        the sink (``refused_by``, a fan-out it interrupted), the sinks after it take ``rec``
        first."""
        if refused_by is not None:
            offer_after(self.targets, refused_by, rec, levelno)
        if not self.fail_silently:
            raise exc
        self._logged_after_close(as_record(rec))

    def _logged_after_close(self, rec: Record) -> None:
        with self._after_close_lock:
            self._after_close += 1  # counted as dropped by every sink, see health()
        message = (
            f"workflow-traces: a record was logged after close() for run {rec.run_id!r} "
            "and was not written"
        )
        if not self.fail_silently:
            raise TraceClosedError(message)
        report(f"closed:{id(self)}", message)

    # -- flushing, closing, health -------------------------------------------------------------
    def _all_channels(self) -> list[Channel]:
        return [self._channel_of(h) for h in self.handlers]

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything logged before the call is written by every sink, all sinks
        sharing one deadline. With fail_silently=False, raise SinkError naming each sink that
        failed, and why."""
        if self._closed:
            return
        late = flush_all(self._all_channels(), timeout)
        failures: dict[str, BaseException] = {
            ch.name: TimeoutError(f"flush did not finish within {timeout}s") for ch in late
        }
        self._raise(failures)

    def _raise(self, failures: dict[str, BaseException]) -> None:
        for ch in self._all_channels():
            err = ch.take_error()
            if err is not None:
                failures.setdefault(ch.name, err)
        if failures and not self.fail_silently and not exiting():
            raise SinkError(failures)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and close every handler, sharing one deadline. Idempotent."""
        if self._closed:
            return
        channels = self._all_channels()
        self._closed = True
        self._rebuild()
        deadline = None if timeout is None else time.monotonic() + timeout
        flush_all(channels, timeout)
        failures: dict[str, BaseException] = {}
        for ch in channels:
            err = ch.take_error()
            if err is not None:
                failures[ch.name] = err
        for handler in self.handlers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if isinstance(handler, BufferedHandler):
                handler.channel.close(remaining)
                logging.Handler.close(handler)
            else:
                self._channels[id(handler)].close(remaining)
        for ch in channels:  # what closing found: records left unwritten at the deadline
            err = ch.take_error()
            if err is not None:
                failures.setdefault(ch.name, err)
        super().close()
        if failures and not self.fail_silently and not exiting():
            raise SinkError(failures)

    @property
    def closed(self) -> bool:
        return self._closed

    def health(self) -> dict[str, SinkHealth]:
        """Each sink's counters: records written, dropped, failed, queued, and the last error."""
        late = self._after_close
        out = {}
        for ch in self._all_channels():
            health = ch.health()
            if late:
                health = dataclasses.replace(health, dropped=health.dropped + late)
            out[ch.name] = health
        return out

    def __repr__(self) -> str:
        return f"<MultiHandler run_id={self.run_id!r} handlers={self.handler_types}>"
