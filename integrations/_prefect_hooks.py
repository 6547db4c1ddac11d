"""The Prefect state hooks that trace runs, and the traced wrapper's side of them.

The hooks read their arguments (``flow, flow_run, state`` / ``task, task_run, state``), never
the run context: a top-level flow's on_running hook runs with no context at all, and a subflow's
runs in its parent's. A hook never raises: a failure is reported quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from workflow_traces.diagnostics import report

from ._prefect_events import _finish, _now, _start, _state_error, _view
from ._prefect_logs import HOOK_PREFIX, attach_logging
from ._prefect_runs import (
    _ensure_flow,
    _ensure_task,
    _extras_of,
    _lock,
    _Run,
    _runs,
    _TaskRun,
    _tasks,
    resolve_record,
)

__all__ = ["FLOW_HOOKS", "TASK_HOOKS", "attach", "begin_call", "end_call", "install_hooks"]


# -- the hooks ---------------------------------------------------------------------------------
Hook = Callable[[Any, Any, Any], None]


#: A hook's parameters as Prefect passes them by keyword (its runner calls a flow's
#: on_cancellation/on_crashed hooks as ``hook(flow=, flow_run=, state=)``; engines pass them
#: by position).
_HOOK_KEYWORDS = (("flow", "task"), ("flow_run", "task_run"), ("state",))


class _Hook:
    """One of our state hooks. It pickles as a reference to this module's attribute of its
    name: a Flow or Task carrying it is pickled by value when a distributed task runner (Dask,
    Ray) ships it to a worker, and a closure would drag the run registry (sinks, locks) along."""

    def __init__(self, name: str, fn: Hook) -> None:
        self.name = name
        self.fn = fn
        self.__name__ = self.__qualname__ = HOOK_PREFIX + name

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        try:
            values = list(args[:3])
            for names in _HOOK_KEYWORDS[len(values) :]:
                values.append(next((kwargs[n] for n in names if n in kwargs), None))
            self.fn(*values)
        except Exception as exc:
            # A hook that raises makes Prefect log an error line; report ours quietly.
            name = self.name
            report(f"prefect:hook:{name}", f"workflow-traces: hook {name} failed: {exc!r}")

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _hook_named, (self.name,)


def _hook_named(name: str) -> Hook:
    """The hook of that name, in this process (see ``_Hook.__reduce__``)."""
    hook: Hook = globals()[name]
    return hook


def _hook(name: str) -> Callable[[Hook], Hook]:
    def name_it(fn: Hook) -> Hook:
        return _Hook(name, fn)

    return name_it


def attach() -> None:
    """Attach the log router to Prefect's run loggers (again, if logging was reconfigured)."""
    attach_logging(resolve_record)


@_hook("flow_running")
def flow_running(flow: Any, flow_run: Any, state: Any) -> None:
    attach()
    reg = _ensure_flow(flow.name, flow_run, _extras_of(flow.fn))
    _start(reg, getattr(state, "timestamp", None))


def _adopt_flow(flow: Any, flow_run: Any) -> _Run | None:
    """A flow run that started in another process, its attempt open here so it can end here.

    Prefect's runner (``flow.serve``, workers) runs a flow run in a subprocess but calls its
    on_cancellation and on_crashed hooks in the runner's own process, where the run was never
    seen: its started events came from the subprocess. The attempt is taken from the API's
    record of the run (``start_time``, ``run_count``); no started event is written again."""
    start = getattr(flow_run, "start_time", None)
    if start is None:
        return None  # it never ran: there is no attempt to end
    reg = _ensure_flow(flow.name, flow_run, _extras_of(flow.fn))
    with _lock:
        if reg.open or reg.final:
            return reg
        reg.attempt = max(1, int(getattr(flow_run, "run_count", 0) or 0))
        reg.open = True
        reg.started = start
        attempt = reg.attempt
    reg.view = _view(reg, reg.scope, {"attempt": attempt})
    return reg


def _flow_end(
    event: str, status: str | None = None, with_error: bool = False, adopt: bool = False
) -> Hook:
    def end(flow: Any, flow_run: Any, state: Any) -> None:
        reg = _runs.get(str(flow_run.id))
        if reg is None and adopt:
            reg = _adopt_flow(flow, flow_run)
        if reg is None:
            return
        error = _state_error(state) if with_error else None
        _finish(reg, event, getattr(state, "timestamp", None), error, status)
        reg.final = True

    return end


flow_completed = _hook("flow_completed")(_flow_end("succeeded"))
flow_failed = _hook("flow_failed")(_flow_end("failed", with_error=True))
# Prefect's runner calls these two in its own process (see _adopt_flow).
flow_crashed = _hook("flow_crashed")(_flow_end("failed", "crashed", with_error=True, adopt=True))
flow_cancelled = _hook("flow_cancelled")(_flow_end("cancelled", adopt=True))


@_hook("task_running")
def task_running(task: Any, task_run: Any, state: Any) -> None:
    attach()
    _start(_ensure_task(task, task_run), getattr(state, "timestamp", None))


def _task_end(event: str, with_error: bool = False) -> Hook:
    def end(task: Any, task_run: Any, state: Any) -> None:
        with _lock:
            treg = _tasks.pop(str(task_run.id), None)
        if treg is None:
            return
        error = _state_error(state) if with_error else None
        _finish(treg, event, getattr(state, "timestamp", None), error)
        if treg.run is not None and not treg.run.is_flow:
            treg.run.final = True  # a task run outside any flow: its run ends with it

    return end


task_completed = _hook("task_completed")(_task_end("succeeded"))
task_failed = _hook("task_failed")(_task_end("failed", with_error=True))

#: (attribute of a Flow, our hook, run first?) for each state hook list.
FLOW_HOOKS: tuple[tuple[str, Hook, bool], ...] = (
    ("on_running_hooks", flow_running, True),
    ("on_completion_hooks", flow_completed, False),
    ("on_failure_hooks", flow_failed, False),
    ("on_crashed_hooks", flow_crashed, False),
    ("on_cancellation_hooks", flow_cancelled, False),
)
TASK_HOOKS: tuple[tuple[str, Hook, bool], ...] = (
    ("on_running_hooks", task_running, True),
    ("on_completion_hooks", task_completed, False),
    ("on_failure_hooks", task_failed, False),
)


def install_hooks(obj: Any, hooks: tuple[tuple[str, Hook, bool], ...]) -> None:
    """Add our hooks to a Flow or Task, once. The lists are replaced, not changed in place: a
    list passed to ``@flow(on_completion=[...])`` may be shared with other flows."""
    if all(hook in (getattr(obj, attr, None) or ()) for attr, hook, _ in hooks):
        return
    with _lock:
        for attr, hook, first in hooks:
            current = list(getattr(obj, attr, None) or [])
            if hook not in current:
                setattr(obj, attr, [hook, *current] if first else [*current, hook])


# -- the wrapper's side ------------------------------------------------------------------------
def begin_call(wrapper: Any) -> _Run | _TaskRun | None:
    """Called by a traced function as it starts: find the run it is part of, make sure hooks are
    installed and the attempt's started event is out (the first run of a flow or task decorated
    as ``@flow`` over ``@traced`` comes before its hooks exist: its start is emitted here)."""
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    if task_ctx is not None and getattr(task_ctx.task, "fn", None) is wrapper:
        task, task_run = task_ctx.task, task_ctx.task_run
        install_hooks(task, TASK_HOOKS)
        treg = _tasks.get(str(task_run.id))
        if treg is None or not treg.open:
            task_running(task, task_run, task_run.state)
        return _tasks.get(str(task_run.id))
    flow_ctx = FlowRunContext.get()
    if (
        flow_ctx is not None
        and flow_ctx.flow is not None
        and flow_ctx.flow_run is not None
        and getattr(flow_ctx.flow, "fn", None) is wrapper
    ):
        flow, flow_run = flow_ctx.flow, flow_ctx.flow_run
        install_hooks(flow, FLOW_HOOKS)
        reg = _runs.get(str(flow_run.id))
        if reg is None or not reg.open:
            flow_running(flow, flow_run, flow_run.state)
        return _runs.get(str(flow_run.id))
    return None


def end_call(reg: _Run | _TaskRun, exc: BaseException | None) -> None:
    """Called by a traced function as it ends. An exception ends the attempt as failed now
    (Prefect's on_failure hook fires only once retries are exhausted). Other BaseExceptions are
    left to the flow's crash/cancellation hooks; tasks have none, so their attempt ends here."""
    if exc is None or isinstance(exc, GeneratorExit):
        return
    if isinstance(exc, Exception):
        _finish(reg, "failed", _now(), exc)
    elif isinstance(reg, _TaskRun):
        if isinstance(exc, asyncio.CancelledError):
            _finish(reg, "cancelled", _now(), exc)
        else:
            _finish(reg, "failed", _now(), exc, "crashed")
