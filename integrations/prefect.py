"""Trace Prefect 3 flows and tasks: add ``@traced`` under ``@flow``/``@task``, set TRACE_*.

::

    from prefect import flow, task, get_run_logger
    from workflow_traces.integrations.prefect import traced

    @task(retries=2)
    @traced
    def extract(n: int) -> list[int]:
        get_run_logger().info("extracting %d", n)    # also reaches our sinks, stamped
        return list(range(n))

    @flow
    @traced
    def etl(n: int = 3) -> int:
        return sum(extract(n))

Every record of a traced run carries workflow_name (the root flow's name, carried through
subflows), job_name (the flow running: a subflow's own name inside it), stage_name (the task's
name, not the task run's), run_id (the flow run id) and parent_run_id (the parent flow run's id,
for a subflow); ``flow_run_name``, ``task_run_id``, ``task_run_name`` and the attempt number go
into extras. Lifecycle events come from Prefect's state hooks: a root flow emits workflow and job
events, a subflow job events, a task stage events, one started/end pair per attempt.

Records logged through ``get_run_logger()`` and Prefect's own engine lines ("Finished in state
...") reach the sinks too, stamped from the extras Prefect puts on them. ``get_trace()`` inside a
traced flow or task returns the run's trace (stamped the same way, no new sinks). Sinks come from
the TRACE_* settings, or from ``extras`` given to ``traced``; subflows and tasks use their flow's.
Records are written by each sink's worker; call ``flush()`` to wait for them.

Order of decorators: ``@traced`` goes under ``@flow``/``@task``, so the Flow or Task keeps
``.submit``, ``.map`` and the rest. Prefect builds the Flow/Task after ``traced`` ran, so the
hooks are added on the first call: for that first run of each Flow/Task object, the started
event is emitted by the wrapper (just after Prefect's Running state, before the function body)
instead of by the on_running hook; the records are the same. ``traced_flow(...)`` and
``traced_task(...)`` build the Flow/Task with the hooks in place from the start. Given a Flow or
Task (``@traced`` above ``@flow``), ``traced`` traces that object in place and returns it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, TypeVar, overload

try:
    # ``prefect.flow``/``prefect.task`` load prefect.main, which configures logging
    # (dictConfig, dropping handlers attached before): the handler is attached below, after.
    from prefect import Flow, Task, __version__
    from prefect import flow as prefect_flow
    from prefect import task as prefect_task
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "workflow_traces.integrations.prefect needs Prefect 3: "
        f"pip install 'workflow-traces[prefect]' ({exc})"
    ) from exc
if not __version__.startswith("3."):  # pragma: no cover - depends on the installation
    raise ImportError(
        f"workflow_traces.integrations.prefect needs Prefect 3, found Prefect {__version__}"
    )

from workflow_traces.core import context
from workflow_traces.core.context import Scope
from workflow_traces.core.otel import enter_span, exit_span
from workflow_traces.core.scoped import ScopedTrace
from workflow_traces.diagnostics import report

from ._prefect_events import PrefectStateError
from ._prefect_hooks import (
    FLOW_HOOKS,
    TASK_HOOKS,
    begin_call,
    end_call,
    install_hooks,
)
from ._prefect_logs import PrefectRunHandler
from ._prefect_logs import attach_logging as _attach_logging
from ._prefect_runs import (
    EXTRAS_ATTR,
    flush_sinks,
    resolve_record,
    shutdown_sinks,
)

__all__ = [
    "PrefectStateError",
    "attach_logging",
    "flush",
    "shutdown",
    "traced",
    "traced_flow",
    "traced_task",
]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__workflow_traces_prefect__"


def attach_logging() -> PrefectRunHandler:
    """Attach the handler that routes Prefect's run log records to our sinks. Done on import
    and at the start of every traced run; call it yourself only after reconfiguring logging
    (for example ``prefect.logging.configuration.setup_logging()``) in the middle of a run."""
    return _attach_logging(resolve_record)


def flush(timeout: float | None = None) -> None:
    """Return once every record of traced runs logged so far is written by every sink."""
    flush_sinks(timeout)


def shutdown(timeout: float | None = 30.0) -> None:
    """Flush and close every sink the adapter opened, and forget every run. Traced runs after
    this open their sinks again. Sinks left open are flushed at interpreter exit anyway."""
    shutdown_sinks(timeout)


class _Call:
    """One call of a traced function: the run it belongs to and the scope it set."""

    __slots__ = ("otel", "reg", "tokens", "wrapper")

    def __init__(self, wrapper: Callable[..., Any]) -> None:
        self.wrapper = wrapper
        self.reg: Any = None
        self.tokens: tuple[Any, Any] | None = None
        self.otel: Any = None

    def enter(self, set_scope: bool = True) -> None:
        try:
            self.reg = begin_call(self.wrapper)
        except Exception as exc:
            report("prefect:call", f"workflow-traces: could not trace this run: {exc!r}")
            self.reg = None
        if self.reg is not None and set_scope:
            scope: Scope = self.reg.scope
            view: ScopedTrace | None = self.reg.view
            self.tokens = (context.set_scope(scope), context.set_active_trace(view))
            self.otel = enter_span(scope.trace_id, scope.span_id)  # core.otel

    def exit(self, exc: BaseException | None) -> None:
        if self.tokens is not None:
            exit_span(self.otel)
            self.otel = None
            scope_token, active_token = self.tokens
            self.tokens = None
            context.reset_active_trace(active_token)
            context.reset_scope(scope_token)
        if self.reg is not None:
            try:
                end_call(self.reg, exc)
            except Exception as err:
                report("prefect:call", f"workflow-traces: could not end this attempt: {err!r}")


def _wrap(fn: Callable[..., Any], extras: dict[str, Any] | None) -> Callable[..., Any]:
    wrapper: Callable[..., Any]
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            # No scope across yields: the consumer runs between them. Log records are still
            # stamped from Prefect's extras; events still come from the hooks.
            call = _Call(agen_wrapper)
            call.enter(set_scope=False)
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except BaseException as exc:
                call.exit(exc)
                raise
            call.exit(None)

        wrapper = agen_wrapper
    elif inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            call = _Call(gen_wrapper)
            call.enter(set_scope=False)
            try:
                result = yield from fn(*args, **kwargs)
            except BaseException as exc:
                call.exit(exc)
                raise
            call.exit(None)
            return result

        wrapper = gen_wrapper
    elif inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = _Call(async_wrapper)
            call.enter()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                call.exit(exc)
                raise
            call.exit(None)
            return result

        wrapper = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = _Call(sync_wrapper)
            call.enter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                call.exit(exc)
                raise
            call.exit(None)
            return result

        wrapper = sync_wrapper
    setattr(wrapper, _MARK, True)
    setattr(wrapper, EXTRAS_ATTR, extras)
    # Prefect keys a task by its function's code; this points it at the user's function.
    setattr(wrapper, "__prefect_task_source__", fn)  # noqa: B010
    return wrapper


def _is_traced(fn: Any) -> bool:
    return bool(getattr(fn, _MARK, False))


def _trace_object(obj: Flow[Any, Any] | Task[Any, Any], extras: dict[str, Any] | None) -> None:
    if not _is_traced(obj.fn):
        obj.fn = _wrap(obj.fn, extras)
    install_hooks(obj, FLOW_HOOKS if isinstance(obj, Flow) else TASK_HOOKS)


def _check_extras(extras: Any) -> dict[str, Any] | None:
    if extras is not None and not isinstance(extras, dict):
        raise TypeError(f"extras: expected a dict or None, got {type(extras).__name__}")
    return None if extras is None else dict(extras)


@overload
def traced(fn: F, /) -> F: ...
@overload
def traced(fn: None = None, /, *, extras: dict[str, Any] | None = None) -> Callable[[F], F]: ...
def traced(fn: Any = None, /, *, extras: dict[str, Any] | None = None) -> Any:
    """Trace a Prefect flow or task. Put it under ``@flow``/``@task``; usable as ``@traced`` or
    ``@traced(extras={...})`` (``extras`` choose sinks, as for ``get_trace``; without them the
    TRACE_* settings do). Sync, async and generator functions are supported.

    Given a Flow or Task (``@traced`` above ``@flow``), it traces that object in place and
    returns it, so ``.submit``, ``.map`` and the rest stay available."""
    extras = _check_extras(extras)
    if fn is None:
        return functools.partial(_traced, extras=extras)
    return _traced(fn, extras)


def _traced(fn: Any, extras: dict[str, Any] | None) -> Any:
    if isinstance(fn, Flow | Task):
        _trace_object(fn, extras)
        return fn
    if _is_traced(fn):
        return fn
    if not callable(fn):
        raise TypeError(f"traced: expected a function, a Flow or a Task, got {type(fn).__name__}")
    return _wrap(fn, extras)


def traced_flow(
    fn: Any = None, /, *, extras: dict[str, Any] | None = None, **flow_kwargs: Any
) -> Any:
    """``@flow(**flow_kwargs)`` and ``@traced(extras=extras)`` in one, with the hooks in place
    from the first run. Usable bare or with arguments: ``@traced_flow(name="etl", retries=1)``."""
    extras = _check_extras(extras)

    def apply(f: Callable[..., Any]) -> Any:
        flow_obj = prefect_flow(_traced(f, extras), **flow_kwargs)
        install_hooks(flow_obj, FLOW_HOOKS)
        return flow_obj

    return apply if fn is None else apply(fn)


def traced_task(
    fn: Any = None, /, *, extras: dict[str, Any] | None = None, **task_kwargs: Any
) -> Any:
    """``@task(**task_kwargs)`` and ``@traced(extras=extras)`` in one, with the hooks in place
    from the first run. Usable bare or with arguments: ``@traced_task(retries=2)``."""
    extras = _check_extras(extras)

    def apply(f: Callable[..., Any]) -> Any:
        task_obj = prefect_task(_traced(f, extras), **task_kwargs)
        install_hooks(task_obj, TASK_HOOKS)
        return task_obj

    return apply if fn is None else apply(fn)


# Prefect configured logging while it was imported above; attach now, after that.
attach_logging()
