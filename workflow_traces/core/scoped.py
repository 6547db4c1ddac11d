"""The trace a workflow scope shares with everything inside it.

A workflow scope (see ``workflow_traces.integrations.plain``) opens its sinks once. Its jobs and
stages, and ``get_trace()`` called inside any of them, get a ``ScopedTrace``: a view over the
workflow's sinks that stamps the run id and the scope's names. Closing a view only flushes; the
scope that opened the sinks closes them when it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from workflow_traces.core import context
from workflow_traces.core.context import _SCOPE, Scope
from workflow_traces.core.record import F_EXTRAS, RecordValues, level_name
from workflow_traces.core.trace import ExcFields, MultiTrace, Trace, _LogCall

__all__ = ["ScopedTrace", "active_trace"]


def active_trace() -> ScopedTrace | None:
    """The trace of the innermost workflow, job or stage scope in this thread or task (set by
    the adapters with ``context.set_active_trace``)."""
    trace: ScopedTrace | None = context.active_trace()
    return trace


def _through_record(levelno: int) -> _LogCall:
    """A level's log call for ScopedTrace. Inside its own run's scope and with no extras of its
    own, the record is what Trace's call makes, so that call does the work (one Python call
    level instead of four, a quarter of the cost); otherwise it goes through ``_record``."""
    trace_call = getattr(Trace, level_name(levelno).lower())

    def log(
        self: ScopedTrace,
        message: Any,
        _is_err: bool = levelno >= 40,
        _exc: ExcFields | None = None,
        stacklevel: int = 1,
        _queue: bool = True,
    ) -> RecordValues | None:
        if _queue and self.record_extras is None and _SCOPE.get().run_id == self.run_id:
            return trace_call(self, message, _is_err, _exc, stacklevel + 1)  # type: ignore[no-any-return]
        if not _queue:
            return self._record(levelno, message, _is_err, _exc, stacklevel + 1, False)
        if levelno >= self.level:
            self._record(levelno, message, _is_err, _exc, stacklevel + 1)
        return None

    log.__name__ = level_name(levelno).lower()
    log.__qualname__ = f"ScopedTrace.{log.__name__}"
    return log


class ScopedTrace(MultiTrace):
    """A view over a workflow's trace, stamped with one scope.

    Records take the active scope's names while that scope belongs to this run (so the workflow's
    trace used inside a stage stamps the stage); used anywhere else (a thread started without
    ``contextvars.copy_context()``, another workflow) they take this view's own scope.
    ``close()`` only flushes: the workflow scope that opened the sinks closes them.
    """

    def __init__(
        self,
        base: Trace,
        scope: Scope,
        *,
        extras: dict[str, Any] | None = None,
        record_extras: dict[str, Any] | None = None,
    ) -> None:
        url = getattr(base, "url", None) or urlparse("multi://")
        super().__init__(
            url,
            base.run_id,
            base.parent_run_id,
            base.extras if extras is None else extras,
            base.handler,
        )
        self.level = base.level
        self.scope = scope
        self._span = (scope.trace_id, scope.span_id)
        #: Replaces the handler's record extras (a nested workflow's own extras), or None.
        self.record_extras = record_extras

    if not TYPE_CHECKING:  # see _through_record: Trace's calls alone would skip _record
        debug = _through_record(10)
        info = _through_record(20)
        warning = _through_record(30)
        error = _through_record(40)
        critical = _through_record(50)

    def child(self, scope: Scope) -> ScopedTrace:
        """A view over the same sinks for a scope inside this one."""
        return ScopedTrace(self, scope, record_extras=self.record_extras)

    def _record(
        self,
        levelno: int,
        message: Any,
        is_err: bool,
        exc: tuple[str | None, str | None, str | None] | None,
        stacklevel: int,
        queue: bool = True,
    ) -> RecordValues:
        if _SCOPE.get().run_id == self.run_id:
            rec = Trace._record(self, levelno, message, is_err, exc, stacklevel + 1, False)
        else:
            token = _SCOPE.set(self.scope)
            try:
                rec = Trace._record(self, levelno, message, is_err, exc, stacklevel + 1, False)
            finally:
                _SCOPE.reset(token)
        if self.record_extras is not None:
            rec = (*rec[:F_EXTRAS], self.record_extras, *rec[F_EXTRAS + 1 :])
        if queue:
            self.handler.offer(rec, levelno)
        return rec

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush; the sinks stay open until the workflow scope that opened them ends."""
        self.flush(timeout)

    def __repr__(self) -> str:
        names = "/".join(n for n in self.scope[:3] if n)
        return f"<ScopedTrace run_id={self.run_id!r} scope={names!r} handlers={self.handler_types}>"
