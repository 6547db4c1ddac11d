"""The workflow/job/stage scope and the active workflow trace, each carried in a context variable.

Threads started with ``contextvars.copy_context()`` and asyncio tasks each see their own scope.
A scope entered inside another inherits every field it does not set.

Adapters (``workflow_traces.integrations``) enter and leave scopes with :func:`set_scope` /
:func:`reset_scope` and :func:`set_active_trace` / :func:`reset_active_trace`, the way a
``ContextVar`` is set and reset: each ``set_*`` returns a token that its ``reset_*`` takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

__all__ = [
    "Scope",
    "active_trace",
    "child_span",
    "current_scope",
    "new_span_id",
    "new_trace_id",
    "reset_active_trace",
    "reset_scope",
    "set_active_trace",
    "set_scope",
    "trace_scope",
]


class Scope(NamedTuple):
    """The names and ids stamped on every record built while the scope is active."""

    workflow_name: str | None = None
    job_name: str | None = None
    stage_name: str | None = None
    run_id: str | None = None
    parent_run_id: str | None = None
    #: The W3C trace id (32 hex digits) of the run's trace: every scope of a run shares it.
    trace_id: str | None = None
    #: The W3C span id (16 hex digits) of this scope, made once when the scope is made.
    span_id: str | None = None
    #: The span id of the scope around this one, or of a remote parent; None at the root.
    parent_span_id: str | None = None

    def child(
        self,
        workflow_name: str | None,
        job_name: str | None,
        stage_name: str | None,
        run_id: str | None,
        parent_run_id: str | None,
    ) -> Scope:
        """A scope with these names and ids, its span a new child of this scope's span (see
        :func:`child_span`)."""
        return Scope(workflow_name, job_name, stage_name, run_id, parent_run_id, *child_span(self))

    def retried(self) -> Scope:
        """This scope with a new span of its own, a sibling under the same parent: a retry
        attempt."""
        if self.trace_id is None:
            return self._replace(**dict(zip(_SPAN_FIELDS, child_span(self), strict=True)))
        return self._replace(span_id=new_span_id())


_SPAN_FIELDS = ("trace_id", "span_id", "parent_span_id")


def new_trace_id() -> str:
    """A new random W3C trace id: 32 lowercase hex digits, not all zero."""
    while True:
        value = os.urandom(16).hex()
        if value != "0" * 32:
            return value


def new_span_id() -> str:
    """A new random W3C span id: 16 lowercase hex digits, not all zero."""
    while True:
        value = os.urandom(8).hex()
        if value != "0" * 16:
            return value


def child_span(outer: Scope) -> tuple[str, str, str | None]:
    """(trace id, span id, parent span id) of a new span under ``outer``: in ``outer``'s trace
    when it has one; otherwise under the remote parent of this process or context (an active
    OpenTelemetry span, or ``TRACEPARENT`` handed on by a parent process, see
    ``core.propagation``), or else the root of a new trace. Called once per scope, never per
    record."""
    if outer.trace_id is not None:
        return outer.trace_id, new_span_id(), outer.span_id
    from workflow_traces.core.propagation import remote_parent

    parent = remote_parent()
    if parent is not None:
        return parent[0], new_span_id(), parent[1]
    return new_trace_id(), new_span_id(), None


_EMPTY = Scope()
_SCOPE: ContextVar[Scope] = ContextVar("workflow_traces_scope", default=_EMPTY)


def current_scope() -> Scope:
    """The scope active in this thread or task."""
    return _SCOPE.get()


def set_scope(scope: Scope) -> Token[Scope]:
    """Make ``scope`` the active scope; give the token returned to :func:`reset_scope`."""
    return _SCOPE.set(scope)


def reset_scope(token: Token[Scope]) -> None:
    """Restore the scope that was active before the :func:`set_scope` call ``token`` came from."""
    _SCOPE.reset(token)


# The trace of the innermost workflow, job or stage scope (a ScopedTrace, see core.scoped): the
# one ``get_trace()`` returns inside the scope. Held here, not in core.scoped, so that core.trace
# reads it without importing core.scoped (which builds on core.trace). Typed Any for the same
# reason; ``core.scoped.active_trace`` is the typed way to read it.
_ACTIVE: ContextVar[Any] = ContextVar("workflow_traces_active", default=None)


def active_trace() -> Any:
    """The trace of the innermost workflow, job or stage scope in this thread or task (a
    ``ScopedTrace``), or None."""
    return _ACTIVE.get()


def set_active_trace(trace: Any) -> Token[Any]:
    """Make ``trace`` (a ``ScopedTrace``, or None) the active trace; give the token returned to
    :func:`reset_active_trace`."""
    return _ACTIVE.set(trace)


def reset_active_trace(token: Token[Any]) -> None:
    """Restore the trace that was active before the :func:`set_active_trace` call ``token``
    came from."""
    _ACTIVE.reset(token)


@contextmanager
def trace_scope(
    *,
    workflow_name: str | None = None,
    job_name: str | None = None,
    stage_name: str | None = None,
    run_id: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[Scope]:
    """Stamp records built inside the ``with`` block; unset fields are inherited, and so is
    the trace context (the block is no span of its own)."""
    outer = _SCOPE.get()
    inner = Scope(
        workflow_name if workflow_name is not None else outer.workflow_name,
        job_name if job_name is not None else outer.job_name,
        stage_name if stage_name is not None else outer.stage_name,
        run_id if run_id is not None else outer.run_id,
        parent_run_id if parent_run_id is not None else outer.parent_run_id,
        outer.trace_id,
        outer.span_id,
        outer.parent_span_id,
    )
    token = _SCOPE.set(inner)
    try:
        yield inner
    finally:
        _SCOPE.reset(token)
