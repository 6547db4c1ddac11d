"""The workflow/job/stage scope, carried in a context variable.

Threads started with ``contextvars.copy_context()`` and asyncio tasks each see their own scope.
A scope entered inside another inherits every field it does not set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

__all__ = ["Scope", "current_scope", "trace_scope"]


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
