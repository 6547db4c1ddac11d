"""The trace API users call: ``get_trace``, ``Trace`` and ``MultiTrace``.

Every log method takes ``stacklevel`` the stdlib's way (``logging.Logger.info``,
``warnings.warn``): 1, the default, names the line that called the method; a helper that wraps
the call passes 2 to name its own caller. Each internal step hands it on as ``stacklevel + 1``
(one frame more), so no step counts frames by itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import ParseResult, urlparse

from workflow_traces.core import record as _record
from workflow_traces.core.context import _EMPTY, _SCOPE, active_trace, child_span
from workflow_traces.core.lines import NEAR, far_line
from workflow_traces.core.propagation import join_inherited
from workflow_traces.core.record import (
    F_SPAN_ID,
    PARENT_SPAN_KEY,
    Record,
    RecordValues,
    as_record,
    get_ident,
    host_name,
    level_name,
    level_number,
)
from workflow_traces.core.stdlib import exception_fields, name_defaults, user_extras
from workflow_traces.diagnostics import report
from workflow_traces.errors import TraceClosedError
from workflow_traces.pipeline.fanout import BIG as _BIG
from workflow_traces.pipeline.fanout import offer_all
from workflow_traces.pipeline.health import SinkHealth
from workflow_traces.pipeline.multi import MultiHandler

__all__ = ["MultiTrace", "Trace", "get_trace"]

H = TypeVar("H", bound=logging.Handler)
_getframe = sys._getframe
_scope_get = _SCOPE.get

ExcFields = tuple[str | None, str | None, str | None]

#: A level's log call: (trace, message, _is_err, _exc, stacklevel, _queue) -> the record's
#: values without _queue, None with it.
_LogCall = Callable[..., Any]


def _log_call(levelno: int) -> _LogCall:
    """The log call of one level: ``Trace.info`` and its siblings are made here.

    A call's whole work is one function, with the level's number and name bound in it: each
    Python call level costs the caller several percent (measured: building and queueing in
    separate calls cost 7% more, and a level method calling a shared builder another 8%).
    The leading-underscore arguments are for ``Trace._record``, the other paths' way in: with
    ``_queue=False`` the call returns the record's values and queues nothing. ``stacklevel``
    is the stdlib's (see the module's docstring).

    It builds a record's values as a plain tuple in ``Record``'s field order and, with
    ``_queue``, appends it to every sink whose level admits it: the fan-out of
    ``fanout.offer_all``, inlined for the same reason. This is its one inlined copy, and
    tests/core/test_fan_out.py checks that the two reach the same sinks the same way. Sinks'
    buffers hold plain tuples: the garbage collector stops tracking a tuple of plain values,
    but never a tuple subclass, and re-scanning every queued Record cost the caller more than
    building it. Workers index the tuples, or make Records (``as_record``).
    """
    level = level_name(levelno)

    def log(
        self: Trace,
        message: Any,
        _is_err: bool = levelno >= 40,
        _exc: ExcFields | None = None,
        stacklevel: int = 1,
        _queue: bool = True,
    ) -> RecordValues | None:
        if _queue and levelno < self.level:
            return None
        frame = _getframe(stacklevel)
        code = frame.f_code
        lasti = frame.f_lasti
        sc = _scope_get()
        if sc is _EMPTY:
            wf, job, stage = self._names
            trace_id, span_id = self._span
        else:  # the scope's workflow, job and stage names, or the trace's; the scope's span
            names = self._names
            wf, job, stage = sc[0] or names[0], sc[1] or names[1], sc[2] or names[2]
            trace_id, span_id = sc[5], sc[6]
        if type(message) is not str:
            message = _text(message)
        exc_type, exc_message, exc_tb = _exc or (None, None, None)
        rec = (
            time_ns(),
            level,
            levelno,
            message,
            self.run_id,
            self.parent_run_id,
            wf,
            job,
            stage,
            code.co_filename,
            frame.f_lineno if lasti < NEAR else far_line(frame, code, lasti),  # see core.lines
            code.co_name,
            _record._pid,
            get_ident(),
            _record._host or host_name(),
            next(_record._ids),  # the record id, made whole off this thread (see _record)
            _is_err,
            self._record_extras,
            exc_type,
            exc_message,
            exc_tb,
            "log",
            None,
            None,
            None,
            None,
            None,
            trace_id,
            span_id,
            len(message) + 256,
        )
        if not _queue:
            return rec
        try:  # offer_all(self.handler.targets, rec, levelno), inlined
            if rec[-1] < _BIG:  # its size
                for lvl, dq, ch in self.handler.targets:
                    if levelno >= lvl:
                        if len(dq) < ch.wake_records:
                            dq.append(rec)
                        else:
                            ch.offer(rec)
            else:
                ch = None  # offer_all goes on past a closed sink itself
                offer_all(self.handler.targets, rec, levelno)
        except TraceClosedError as exc:
            # ``ch``, a sink closed on its own, refused ``rec``: the sinks after it take it.
            self.handler.refused(rec, exc, levelno, ch)
        return None

    log.__name__ = level.lower()
    log.__qualname__ = f"Trace.{log.__name__}"
    log.__doc__ = f"Log ``message`` at {level}."
    if len(_LOG_CALLS) < 64:  # the named levels, and a few custom ones through writer()
        _LOG_CALLS[levelno] = log
    return log


_LOG_CALLS: dict[int, _LogCall] = {}


class Trace:
    """Logs a run's records to every sink of its MultiHandler.

    Each call builds one record on the caller's thread and queues it; sink workers write.
    Workflow, job and stage names come from the active scope (see ``trace_scope``), falling back
    to those in ``extras``.
    """

    def __init__(
        self,
        run_id: str,
        parent_run_id: str | None = None,
        extras: dict[str, Any] | None = None,
        handler: MultiHandler | None = None,
        level: int = logging.DEBUG,
    ) -> None:
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.extras: dict[str, Any] = dict(extras or {})
        self.handler = handler or MultiHandler(
            run_id,
            parent_run_id,
            extras=self.extras,
            fail_silently=bool(self.extras.get("fail_silently", True)),
        )
        self.level = level
        #: (trace id, span id) of records made outside any scope: the trace's own span.
        self._span: tuple[str | None, str | None] = child_span(_EMPTY)[:2]
        # Stamps and extras of this trace's records (a MultiTrace may share a handler that
        # was made with other extras).
        self._names = name_defaults(self.extras)
        self._record_extras = user_extras(self.extras)

    # -- building and queueing -----------------------------------------------------------------
    def _record(
        self,
        levelno: int,
        message: Any,
        is_err: bool,
        exc: ExcFields | None,
        stacklevel: int,
        queue: bool = True,
    ) -> RecordValues:
        """Build a record's values, a plain tuple in ``Record``'s field order, and with
        ``queue`` put it on every sink whose level admits it (``MultiHandler.offer``). The
        paths other than ``info`` and its siblings come here: the work is the level's log call
        (see ``_log_call``), one frame further down."""
        call = _LOG_CALLS.get(levelno) or _log_call(levelno)
        rec: RecordValues = call(self, message, is_err, exc, stacklevel + 1, False)
        if queue:
            self.handler.offer(rec, levelno)
        return rec

    def _log(
        self,
        levelno: int,
        message: Any,
        is_err: bool = False,
        exc: Any = None,
        stacklevel: int = 1,
    ) -> None:
        if levelno >= self.level:
            self._record(levelno, message, is_err or levelno >= 40, exc, stacklevel + 1)

    if TYPE_CHECKING:  # what type checkers see; the calls are made by _log_call

        def debug(self, message: Any, *, stacklevel: int = 1) -> None: ...
        def info(self, message: Any, *, stacklevel: int = 1) -> None: ...
        def warning(self, message: Any, *, stacklevel: int = 1) -> None: ...
        def error(self, message: Any, *, stacklevel: int = 1) -> None: ...
        def critical(self, message: Any, *, stacklevel: int = 1) -> None: ...

    else:
        debug = _log_call(10)
        info = _log_call(20)
        warning = _log_call(30)
        error = _log_call(40)
        critical = _log_call(50)

    def exception(self, message: Any, *, stacklevel: int = 1) -> None:
        """Log at ERROR with the exception being handled, its type, message and traceback."""
        exc = exception_fields(sys.exc_info())  # type: ignore[arg-type]
        self._log(40, message, True, exc, stacklevel + 1)

    def writer(
        self, message: Any, level: str | int, is_err: bool = False, *, stacklevel: int = 1
    ) -> None:
        """Log ``message`` at ``level`` (a name such as "info", or a number). ``is_err`` sends
        it to the error stream of text sinks whatever its level. An unknown level name raises
        ValueError naming the level and the valid ones with fail_silently=False; otherwise the
        record is logged at WARNING and the level reported."""
        levelno = _writer_level(self.handler, level)
        if levelno < self.level:
            return
        exc = exception_fields(sys.exc_info()) if str(level).lower() == "exception" else None  # type: ignore[arg-type]
        self._record(levelno, message, is_err or levelno >= 40, exc, stacklevel + 1)

    def event(
        self,
        scope: str,
        event: str,
        *,
        name: str | None = None,
        status: str | None = None,
        duration: float | None = None,
        error: BaseException | str | None = None,
        stacklevel: int = 1,
    ) -> Record:
        """Log a lifecycle event: ``scope`` is workflow/job/stage, ``event`` one of started,
        succeeded, failed, skipped, cancelled. ``error`` is an exception (its type, message
        and traceback are kept) or a text saying what went wrong. Returns the record queued."""
        if scope not in _record.SCOPES:
            raise ValueError(f"scope: expected one of {', '.join(_record.SCOPES)}, got {scope!r}")
        if event not in _record.EVENTS:
            raise ValueError(f"event: expected one of {', '.join(_record.EVENTS)}, got {event!r}")
        status = status or ("running" if event == "started" else event)
        levelno = 40 if event == "failed" else 20
        exc: ExcFields | None = None
        if isinstance(error, BaseException):
            exc = exception_fields((type(error), error, error.__traceback__))
        elif error is not None:
            error = _text(error)
            exc = (None, error, None)
        label = name or "?"
        text = f"{scope} {label!r} {event}"
        if duration is not None:
            text += f" in {duration:.3f}s"
        if isinstance(error, BaseException):
            text += f": {type(error).__name__}: {error}"
        elif error:
            text += f": {error}"
        values = self._record(levelno, text, levelno >= 40, exc, stacklevel + 1, queue=False)
        rec = as_record(values)._replace(
            kind="event", scope=scope, event=event, status=status, duration=duration
        )
        parent_span = self._parent_span(values[F_SPAN_ID])
        if parent_span is not None:  # see Record.parent_span_id
            rec = rec._replace(extras={**(rec.extras or {}), PARENT_SPAN_KEY: parent_span})
        if name is not None:
            if scope == "workflow":
                rec = rec._replace(workflow_name=name)
            elif scope == "job":
                rec = rec._replace(job_name=name)
            else:
                rec = rec._replace(stage_name=name)
        self.handler.offer(rec, levelno)
        return rec

    def _parent_span(self, span_id: str | None) -> str | None:
        """The parent of span ``span_id``, the active scope's or this view's own scope's."""
        found = [s for s in (_SCOPE.get(), getattr(self, "scope", _EMPTY)) if s.span_id == span_id]
        return found[0].parent_span_id if found and span_id is not None else None

    # -- async twins: queue without blocking the event loop --------------------------------------
    async def awriter(
        self, message: Any, level: str | int, is_err: bool = False, *, stacklevel: int = 1
    ) -> None:
        await self._alog(_writer_level(self.handler, level), message, is_err, stacklevel + 1)

    async def _alog(
        self, levelno: int, message: Any, is_err: bool = False, stacklevel: int = 1
    ) -> None:
        if levelno < self.level:
            return
        rec = self._record(levelno, message, is_err or levelno >= 40, None, stacklevel + 1, False)
        full: list[Any] = []
        self.handler.offer(rec, levelno, full)
        if full:  # those buffers are full and their policy is to block: wait off the loop
            import asyncio  # here, not at the top: it costs ~30 ms of import time

            for ch in full:
                try:
                    await asyncio.to_thread(ch.offer, rec)
                except TraceClosedError as exc:
                    self.handler.refused(rec, exc)

    async def adebug(self, message: Any, *, stacklevel: int = 1) -> None:
        await self._alog(10, message, False, stacklevel + 1)

    async def ainfo(self, message: Any, *, stacklevel: int = 1) -> None:
        await self._alog(20, message, False, stacklevel + 1)

    async def awarning(self, message: Any, *, stacklevel: int = 1) -> None:
        await self._alog(30, message, False, stacklevel + 1)

    async def aerror(self, message: Any, *, stacklevel: int = 1) -> None:
        await self._alog(40, message, False, stacklevel + 1)

    async def acritical(self, message: Any, *, stacklevel: int = 1) -> None:
        await self._alog(50, message, False, stacklevel + 1)

    async def aexception(self, message: Any, *, stacklevel: int = 1) -> None:
        self.exception(message, stacklevel=stacklevel + 1)

    # -- handlers --------------------------------------------------------------------------------
    def add_handler(self, handler: logging.Handler) -> None:
        self.handler.add_handler(handler)

    def remove_handler(self, handler: logging.Handler) -> None:
        self.handler.remove_handler(handler)

    def get_handler_by_type(self, handler_type: type[H]) -> H | None:
        return self.handler.get_handler_by_type(handler_type)

    def get_handlers_by_type(self, handler_type: type[H]) -> list[H]:
        return self.handler.get_handlers_by_type(handler_type)

    @property
    def handler_count(self) -> int:
        return self.handler.handler_count

    @property
    def handler_types(self) -> list[str]:
        return self.handler.handler_types

    def health(self) -> dict[str, SinkHealth]:
        """Each sink's counters: written, dropped, failed, queued, last error."""
        return self.handler.health()

    # -- lifecycle -------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Return once everything logged before the call is written."""
        self.handler.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and close every sink. Idempotent."""
        self.handler.close(timeout)

    async def aflush(self, timeout: float | None = None) -> None:
        import asyncio

        await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float | None = 30.0) -> None:
        import asyncio

        await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> Trace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Trace:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} run_id={self.run_id!r} handlers={self.handler_types}>"


def _text(message: Any) -> str:
    """``str(message)``; a broken ``__str__`` must not reach the caller."""
    try:
        return str(message)
    except Exception as exc:
        return f"<unprintable {type(message).__name__}: {type(exc).__name__}>"


def _writer_level(handler: MultiHandler, level: str | int) -> int:
    """The number of ``level``. An unknown name raises ValueError with fail_silently=False;
    otherwise it is reported and WARNING is used, so the record is not lost."""
    try:
        return level_number(level)
    except ValueError as exc:
        if not handler.fail_silently:
            raise
        report(f"level:{str(level)[:50]}", f"workflow-traces: {exc}; logged at WARNING")
        return 30


class MultiTrace(Trace):
    """A trace over a MultiHandler, with the spec's constructor."""

    def __init__(
        self,
        url: ParseResult,
        run_id: str,
        parent_run_id: str | None = None,
        extras: dict[str, Any] | None = None,
        handler: MultiHandler | None = None,
    ) -> None:
        super().__init__(run_id, parent_run_id, extras, handler)
        self.url = url


def get_trace(
    run_id: str | None = None,
    parent_run_id: str | None = None,
    extras: dict[str, Any] | None = None,
) -> MultiTrace:
    """A trace for ``run_id``, its sinks built from ``extras`` (``trace_type`` and, for
    "multi", ``handlers``) over the TRACE_* settings. In a process started with a run's
    context (``context_env()``), a missing run_id is that run's, the names default to its
    names, and extras that choose no sinks take the sinks it handed on. Inside a scope, a
    missing run_id and parent_run_id come from the scope; otherwise a run_id is generated. An
    empty run_id or parent_run_id counts as missing.

    Inside a workflow scope of the plain or DAG adapter, ``get_trace()`` with no extras (and no
    run id, or the scope's) returns that workflow's trace, stamped with the current names: no
    new sinks are opened, and its ``close()`` only flushes."""
    from workflow_traces.settings.factory import build_handlers

    run_id = run_id or None  # "" means no run id, as None does
    parent_run_id = parent_run_id or None
    active: MultiTrace | None = active_trace()
    if (
        active is not None
        and not extras
        and run_id in (None, active.run_id)
        and parent_run_id in (None, active.parent_run_id)
    ):
        return active
    sc = _SCOPE.get()
    # The run a parent process handed on, if any, fills in what is missing (core.propagation).
    run_id, parent_run_id, extras = join_inherited(run_id, parent_run_id, extras, sc.run_id)
    if run_id is None:
        import uuid

        run_id = sc.run_id or uuid.uuid4().hex
        if parent_run_id is None:
            parent_run_id = sc.parent_run_id
    trace_type, fail_silently, handlers, merged = build_handlers(run_id, parent_run_id, extras)
    handler = MultiHandler(
        run_id, parent_run_id, handlers=handlers, extras=merged, fail_silently=fail_silently
    )
    url = urlparse(f"{trace_type}://")
    return MultiTrace(url, run_id, parent_run_id, merged, handler)
