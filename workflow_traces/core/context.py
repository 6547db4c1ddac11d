"""The workflow/job/stage scope and the active workflow trace, each carried in a context variable.

Threads started with ``contextvars.copy_context()`` and asyncio tasks each see their own scope.
A scope entered inside another inherits every field it does not set.

Adapters (``workflow_traces.integrations``) enter and leave scopes with :func:`set_scope` /
:func:`reset_scope` and :func:`set_active_trace` / :func:`reset_active_trace`, the way a
``ContextVar`` is set and reset: each ``set_*`` returns a token that its ``reset_*`` takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

__all__ = [
    "Scope",
    "active_trace",
    "current_scope",
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
    """Stamp records built inside the ``with`` block; unset fields are inherited."""
    outer = _SCOPE.get()
    inner = Scope(
        workflow_name if workflow_name is not None else outer.workflow_name,
        job_name if job_name is not None else outer.job_name,
        stage_name if stage_name is not None else outer.stage_name,
        run_id if run_id is not None else outer.run_id,
        parent_run_id if parent_run_id is not None else outer.parent_run_id,
    )
    token = _SCOPE.set(inner)
    try:
        yield inner
    finally:
        _SCOPE.reset(token)
