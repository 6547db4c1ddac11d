"""Trace plain Python code: ``workflow``, ``job`` and ``stage`` scopes, and ``@traced``.

::

    from workflow_traces.integrations.plain import job, stage, traced, workflow

    with workflow("etl", trace_type="sqlite", path="./logs/etl.db") as trace:
        with job("extract"):
            with stage("fetch") as t:
                t.info("fetching")          # stamped workflow=etl, job=extract, stage=fetch

Each scope emits lifecycle events: ``started`` on entry, and on exit ``succeeded``, ``failed``
(an ``Exception`` left it; it propagates), ``cancelled`` (a ``BaseException`` such as
``KeyboardInterrupt`` or ``asyncio.CancelledError`` left it; it propagates) or ``skipped``
(``Skipped`` was raised in it; it is swallowed), each with its duration.

Sinks: the outermost workflow scope builds its trace with ``get_trace(run_id, parent_run_id,
extras)`` (so ``extras`` such as ``trace_type``/``handlers``/``path`` or the TRACE_* settings
choose the sinks) and closes it when it ends. Its jobs and stages, nested workflows without
sink settings of their own, and ``get_trace()`` called anywhere inside share those sinks through
a view (``ScopedTrace``) whose ``close()`` only flushes.

Names travel in a context variable: asyncio tasks and threads started with
``contextvars.copy_context().run`` see the scope they were started in; a thread started without
it (a bare ``ThreadPoolExecutor.submit``) sees no scope.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Generator
from contextvars import Token, copy_context
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, overload

from workflow_traces import get_trace
from workflow_traces.core.context import (
    Scope,
    current_scope,
    reset_active_trace,
    reset_scope,
    set_active_trace,
    set_scope,
)
from workflow_traces.core.otel import enter_span, exit_span
from workflow_traces.core.propagation import inherited
from workflow_traces.core.scoped import ScopedTrace, active_trace
from workflow_traces.core.stdlib import CONFIG_KEYS, user_extras
from workflow_traces.core.trace import MultiTrace

__all__ = [
    "ScopedTrace",
    "Skipped",
    "active_trace",
    "job",
    "mark_cancelled",
    "mark_skipped",
    "stage",
    "traced",
    "workflow",
]

P = ParamSpec("P")
R = TypeVar("R")

Kind = Literal["workflow", "job", "stage"]

#: Keys of a workflow's extras that choose sinks: with any of them, a nested workflow opens
#: sinks of its own instead of sharing its parent's.
SINK_KEYS = frozenset({"trace_type", "handlers", "path", "base_path", "db_path", "profile"})


class Skipped(Exception):
    """Raise inside a scope to end it as "skipped"; that scope swallows it."""


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "succeeded"
    if isinstance(exc, Skipped):
        return "skipped"
    if isinstance(exc, Exception):
        return "failed"
    return "cancelled"


class _Scope:
    """One workflow, job or stage scope; use with ``with`` or ``async with``."""

    def __init__(
        self,
        kind: Kind,
        name: str,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        extras: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        self.kind = kind
        self.name = name
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.extras = dict(extras or {})
        self.trace: ScopedTrace | None = None
        self._owner: MultiTrace | None = None
        self._implicit: _Scope | None = None
        self._tokens: tuple[Token[Scope], Token[ScopedTrace | None]] | None = None
        self._otel: Any = None  # the OpenTelemetry context token (core.otel), if any
        self._t0 = 0.0

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> ScopedTrace:
        if self._tokens is not None:
            raise RuntimeError(f"{self.kind} {self.name!r}: this scope is already open")
        outer = active_trace()
        if self.kind != "workflow" and outer is None:
            # A job or stage outside any workflow runs in a workflow of the same name.
            self._implicit = _Scope("workflow", self.name)
            outer = self._implicit._open()
        if self.kind == "workflow":
            trace = self._open_workflow(outer)
        else:
            assert outer is not None
            sc = current_scope()
            ids = (outer.run_id, outer.parent_run_id)
            if self.kind == "job":
                scope = sc.child(sc.workflow_name, self.name, None, *ids)
            else:
                scope = sc.child(sc.workflow_name, sc.job_name, self.name, *ids)
            trace = outer.child(scope)
        self._tokens = (set_scope(trace.scope), set_active_trace(trace))
        self._otel = enter_span(trace.scope.trace_id, trace.scope.span_id)
        self.trace = trace
        self._t0 = time.perf_counter()
        try:
            trace.event(self.kind, "started", name=self.name)
        except BaseException as exc:
            self._reset()
            self._close_owner(exc)
            self._close_implicit(exc)
            raise
        return trace

    def _open_workflow(self, outer: ScopedTrace | None) -> ScopedTrace:
        sc = current_scope()
        run_id = self.run_id or uuid.uuid4().hex
        parent = self.parent_run_id
        if parent is None and sc.run_id is not None and sc.run_id != run_id:
            parent = sc.run_id
        if parent is None and sc.run_id is None:  # a process that joined a parent's run
            joined = inherited()
            if joined is not None and joined.run_id not in (None, run_id):
                parent = joined.run_id
        scope = sc.child(self.name, None, None, run_id, parent)
        own_sinks = outer is None or bool(SINK_KEYS & self.extras.keys())
        if own_sinks:
            extras = {"workflow_name": self.name, **self.extras}
            self._owner = get_trace(run_id, parent, extras)
            return ScopedTrace(self._owner, scope)
        assert outer is not None
        # Share the outer workflow's sinks; stamp this workflow's own extras, if any.
        extras = {**outer.extras, **self.extras, "workflow_name": self.name}
        own = {k: v for k, v in self.extras.items() if k not in CONFIG_KEYS}
        record_extras = user_extras(extras) if own else outer.record_extras
        base = MultiTrace(outer.url, run_id, parent, extras, outer.handler)
        base.level = outer.level
        return ScopedTrace(base, scope, record_extras=record_extras)

    # -- closing -------------------------------------------------------------------------------
    def _reset(self) -> None:
        if self._tokens is not None:
            exit_span(self._otel)
            self._otel = None
            scope_token, active_token = self._tokens
            reset_active_trace(active_token)
            reset_scope(scope_token)
            self._tokens = None

    def _finish(self, exc: BaseException | None) -> bool:
        """Emit the end event and leave the scope; True to swallow ``exc`` (Skipped)."""
        trace = self.trace
        assert trace is not None
        outcome = _outcome(exc)
        try:
            trace.event(
                self.kind,
                outcome,
                name=self.name,
                duration=time.perf_counter() - self._t0,
                error=exc,
            )
        except Exception as err:
            if exc is None:
                raise
            exc.add_note(f"workflow-traces: the {self.kind}'s end event was lost: {err!r}")
        finally:
            self._reset()
        return outcome == "skipped"

    def _close_owner(self, exc: BaseException | None) -> None:
        owner, self._owner = self._owner, None
        if owner is None:
            return
        try:
            owner.close()
        except Exception as err:
            if exc is None:
                raise
            exc.add_note(f"workflow-traces: closing the sinks failed too: {err!r}")

    def _close_implicit(self, exc: BaseException | None) -> None:
        implicit, self._implicit = self._implicit, None
        if implicit is not None:
            implicit._finish(exc)
            implicit._close_owner(exc)

    def __enter__(self) -> ScopedTrace:
        return self._open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        swallow = self._finish(exc)
        self._close_owner(exc)
        self._close_implicit(None if swallow else exc)
        return swallow

    async def __aenter__(self) -> ScopedTrace:
        return self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        swallow = self._finish(exc)
        # Closing flushes the sinks: wait for that off the event loop.
        owner, self._owner = self._owner, None
        implicit, self._implicit = self._implicit, None
        if implicit is not None:
            implicit._finish(None if swallow else exc)
            owner, implicit._owner = implicit._owner, None
        if owner is not None:
            try:
                await asyncio.to_thread(owner.close)
            except Exception as err:
                if exc is None or swallow:
                    raise
                exc.add_note(f"workflow-traces: closing the sinks failed too: {err!r}")
        return swallow

    def __repr__(self) -> str:
        return f"<{self.kind} scope {self.name!r}>"


def workflow(
    name: str,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    **extras: Any,
) -> _Scope:
    """A workflow scope: a run. Yields its trace.

    ``run_id`` is generated when not given. Inside another workflow, ``parent_run_id`` is that
    workflow's run id, and the sinks are shared unless ``extras`` choose sinks of their own
    (``trace_type``, ``handlers``, ``path``). ``extras`` are ``get_trace``'s: sink settings,
    ``fail_silently`` and values to stamp on every record (``environment="prod"``).
    """
    return _Scope("workflow", name, run_id, parent_run_id, extras)


def job(name: str) -> _Scope:
    """A job scope inside the current workflow (outside one, inside a workflow of the same
    name). Yields a trace stamped with the workflow and job names."""
    return _Scope("job", name)


def stage(name: str) -> _Scope:
    """A stage scope inside the current job or workflow (outside one, inside a workflow of the
    same name). Yields a trace stamped with the workflow, job and stage names."""
    return _Scope("stage", name)


def _mark(name: str, kind: Literal["job", "stage"], event: str, reason: str) -> None:
    trace = active_trace()
    if trace is None:
        return
    if kind not in ("job", "stage"):
        raise ValueError(f"kind: expected 'job' or 'stage', got {kind!r}")
    sc = current_scope()
    if kind == "job":
        scope = sc.child(sc.workflow_name, name, None, sc.run_id, sc.parent_run_id)
    else:
        scope = sc.child(sc.workflow_name, sc.job_name, name, sc.run_id, sc.parent_run_id)
    token = set_scope(scope)
    try:
        error: BaseException | None = None
        if reason:
            error = Skipped(reason) if event == "skipped" else asyncio.CancelledError(reason)
        trace.event(kind, event, name=name, error=error)
    finally:
        reset_scope(token)


def mark_skipped(name: str, kind: Literal["job", "stage"] = "job", reason: str = "") -> None:
    """Record that a job or stage of the current workflow was skipped without running: one
    ``skipped`` event, carrying ``reason``. Does nothing outside a workflow."""
    _mark(name, kind, "skipped", reason)


def mark_cancelled(name: str, kind: Literal["job", "stage"] = "job", reason: str = "") -> None:
    """Record that a job or stage of the current workflow was cancelled before it ran: one
    ``cancelled`` event, carrying ``reason``. Does nothing outside a workflow."""
    _mark(name, kind, "cancelled", reason)


def _scope_for_call(stage_name: str, workflow_name: str, extras: dict[str, Any]) -> _Scope:
    if active_trace() is None:
        return _Scope("workflow", workflow_name, extras=extras)
    return _Scope("stage", stage_name)


def _run_generator(gen: Generator[Any, Any, Any], scope: _Scope) -> Generator[Any, Any, Any]:
    """Drive ``gen`` inside ``scope``: the scope opens at the first item and ends when ``gen``
    does. The generator's body runs in a context of its own, entered for each step, so the
    scope's names stamp what the body logs and never what its consumer logs between items.
    Values sent and exceptions thrown in are passed on; a consumer that stops early (``close``)
    ends the scope as cancelled."""
    ctx = copy_context()
    ctx.run(scope.__enter__)
    sent: Any = None
    thrown: BaseException | None = None
    try:
        while True:
            try:
                if thrown is None:
                    item = ctx.run(gen.send, sent)
                else:
                    item = ctx.run(gen.throw, thrown)
                    thrown = None
            except StopIteration as stop:
                result = stop.value
                break
            try:
                sent = yield item
            except GeneratorExit:
                ctx.run(gen.close)
                raise
            except BaseException as exc:  # thrown in by the consumer: the body decides
                thrown = exc
    except BaseException as exc:
        if not ctx.run(scope.__exit__, type(exc), exc, exc.__traceback__):
            raise
        return None  # Skipped: the generator ends
    ctx.run(scope.__exit__, None, None, None)
    return result


@overload
def traced(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    fn: None = None, /, *, stage: str | None = None, workflow: str | None = None, **extras: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    fn: Callable[P, R] | None = None,
    /,
    *,
    stage: str | None = None,
    workflow: str | None = None,
    **extras: Any,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Trace each call of a function, sync or async: ``@traced`` or ``@traced(stage="load")``.

    Called inside a workflow or job scope, it runs in a stage (named ``stage``, or the function's
    name). Called outside any scope, it runs as a workflow (named ``workflow``, else ``stage``,
    else the function's name) with ``extras`` for its sinks. A ``Skipped`` raised by the function
    ends the scope as skipped and the call returns None.

    A generator function is traced over its iteration: the scope opens at the first item and
    ends when the generator does (a consumer that stops early ends it as cancelled). Async
    generator functions are refused with TypeError: use a scope inside them instead.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        stage_name = stage or func.__name__
        workflow_name = workflow or stage or func.__name__
        if inspect.isasyncgenfunction(func):
            raise TypeError(
                f"traced: {func.__qualname__} is an async generator function, which @traced "
                "does not support; open a stage (async with stage(...)) inside it instead"
            )
        if inspect.isgeneratorfunction(func):
            gfunc: Callable[P, Generator[Any, Any, Any]] = func

            @functools.wraps(func)
            def generator_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                # A generator itself, so the scope is chosen at the first item, where the
                # body starts, as it is chosen at the call for a plain function.
                scope = _scope_for_call(stage_name, workflow_name, extras)
                return (yield from _run_generator(gfunc(*args, **kwargs), scope))

            return generator_wrapper

        if inspect.iscoroutinefunction(func):
            afunc: Callable[P, Awaitable[Any]] = func

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with _scope_for_call(stage_name, workflow_name, extras):
                    return await afunc(*args, **kwargs)
                return None

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _scope_for_call(stage_name, workflow_name, extras):
                return func(*args, **kwargs)
            return None  # type: ignore[return-value]  # reached when Skipped was swallowed

        return wrapper

    if fn is not None:
        return decorate(fn)
    return decorate
