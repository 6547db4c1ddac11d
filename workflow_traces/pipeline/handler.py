"""The base of our sink handlers: a real ``logging.Handler`` that owns one Channel."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from workflow_traces.core.record import Record
from workflow_traces.core.stdlib import log_record_values, name_defaults, user_extras
from workflow_traces.diagnostics import is_ignored, report
from workflow_traces.errors import ConfigError, SinkError, TraceClosedError
from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.pipeline.channel import (
    DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_SIZE,
    Channel,
    Overflow,
    RetryPolicy,
    SinkHealth,
    exiting,
)

__all__ = ["BufferedHandler", "ForeignHandlerExporter", "check_positive", "from_sink_config"]

_H = TypeVar("_H")


def from_sink_config(cls: Callable[..., _H], cfg: Any, ctx: Any, *leading: str) -> _H:
    """A sink's handler from its validated config and the registry's ``SinkContext`` (what
    each handler's ``from_config`` does): the run's ids, ``extras`` and ``fail_silently`` from
    ``ctx``, every config key as a keyword of the handler, but the keys named in ``leading``,
    given by position after the run ids (the spec's file and SQLite handlers take their
    path so)."""
    keys = cfg.keywords()
    first = [keys.pop(name) for name in leading]
    return cls(
        ctx.run_id,
        ctx.parent_run_id,
        *first,
        extras=ctx.extras,
        fail_silently=ctx.fail_silently,
        **keys,
    )


def check_positive(field: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a positive number (or zero, if allowed)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and (value > 0 or (allow_zero and value == 0)):
        return
    expected = ">= 0" if allow_zero else "> 0"
    raise ConfigError(f"{field}: must be {expected}, got {value!r}")


class BufferedHandler(logging.Handler):
    """A handler whose ``emit`` only builds a record and queues it; a worker thread writes.

    ``handle`` takes no lock: the queue is safe to append to from any thread.
    """

    def __init__(
        self,
        exporter: Exporter,
        *,
        run_id: str,
        parent_run_id: str | None = None,
        extras: dict[str, Any] | None = None,
        batch_records: int = 1000,
        batch_bytes: int = 1 << 62,
        flush_interval: float = 1.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        overflow: Overflow = "block",
        block_timeout: float = 1.0,
        fail_silently: bool = True,
        retry: RetryPolicy | None = None,
        level: int = logging.NOTSET,
    ) -> None:
        check_positive("flush_interval", flush_interval)
        check_positive("queue_size", queue_size)
        check_positive("queue_bytes", queue_bytes)
        check_positive("block_timeout", block_timeout, allow_zero=True)
        if overflow not in ("block", "drop"):
            raise ConfigError(f"overflow: expected 'block' or 'drop', got {overflow!r}")
        super().__init__(level)
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.extras: dict[str, Any] = dict(extras or {})
        self.fail_silently = fail_silently
        self._names = name_defaults(self.extras)
        self._record_extras = user_extras(self.extras)
        self.channel = Channel(
            exporter,
            batch_records=batch_records,
            batch_bytes=batch_bytes,
            flush_interval=flush_interval,
            capacity=queue_size,
            queue_bytes=queue_bytes,
            overflow=overflow,
            block_timeout=block_timeout,
            retry=retry,
        )
        self.name: str = self.channel.name
        #: MultiHandlers holding this handler; they cache its level and are told of changes.
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()

    def setLevel(self, level: int | str) -> None:
        """Set the level; MultiHandlers holding this handler apply it at once."""
        super().setLevel(level)
        for owner in list(self._owners):
            owner._rebuild()

    # -- logging.Handler -----------------------------------------------------------------------
    def handle(self, record: logging.LogRecord) -> bool:
        if is_ignored(record.name) or (self.filters and not self.filter(record)):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rec = log_record_values(
                record, self.run_id, self.parent_run_id, self._names, self._record_extras
            )
            self.channel.offer(rec)
        except TraceClosedError as exc:  # logged after close(): counted as dropped by the channel
            if not self.fail_silently:
                raise
            report(f"closed:{id(self)}", f"workflow-traces: {exc}")
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float | None = None) -> None:
        """Return once everything logged before the call is written. With fail_silently=False,
        raise SinkError if the sink failed since the last flush. After close() it does nothing
        (``logging.shutdown`` flushes every handler at exit, closed or not)."""
        if self.channel.closed:
            return
        self.channel.flush(timeout)
        self.raise_failures()

    def raise_failures(self) -> None:
        err = self.channel.take_error()
        if err is not None and not self.fail_silently and not exiting():
            raise SinkError({self.channel.name: err})

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, then stop. Idempotent: only the first call can raise."""
        if self.channel.closed:
            return
        self.channel.close(timeout)
        super().close()
        self.raise_failures()

    def health(self) -> SinkHealth:
        return self.channel.health()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({logging.getLevelName(self.level)})>"


class ForeignHandlerExporter(Exporter):
    """Lets any stdlib handler sit in a MultiHandler: its I/O then runs on a worker thread."""

    def __init__(self, handler: logging.Handler) -> None:
        self.handler = handler
        self.name = f"{type(handler).__name__}@{id(handler):x}"
        self._owned = True  # closed with this exporter, unless detached

    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        level = self.handler.level  # read here, so a level set after adding takes effect
        for rec in batch:
            if rec.levelno < level:
                continue
            lr = logging.LogRecord(
                rec.logger or "workflow_traces.record",
                rec.levelno,
                rec.filename or "",
                rec.lineno or 0,
                rec.message,
                None,
                None,
                rec.func_name,
            )
            lr.created = rec.time_ns / 1e9
            for key in ("run_id", "parent_run_id", "workflow_name", "job_name", "stage_name"):
                setattr(lr, key, getattr(rec, key))
            if rec.exc_traceback:
                lr.exc_text = rec.exc_traceback
            self.handler.handle(lr)
        self.handler.flush()
        return None

    def detach(self) -> None:
        """Leave the handler open when this exporter shuts down (``remove_handler``)."""
        self._owned = False

    def shutdown(self) -> None:
        if self._owned:
            self.handler.close()
