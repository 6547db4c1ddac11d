"""Prefect flow and task runs as workflow-traces runs: the run registry, the state hooks that emit
lifecycle events, and the sinks they share.

Mapping: a flow run is a run (run_id = its flow run id; parent_run_id = its parent flow run's id
for a subflow); workflow_name is the root flow's name, job_name the running flow's name,
stage_name the task's name. A root flow emits workflow and job events, a subflow job events,
a task run stage events: one started event per attempt and one end event per attempt.

The hooks read their arguments (``flow, flow_run, state`` / ``task, task_run, state``), never
the run context: a top-level flow's on_running hook runs with no context at all, and a subflow's
runs in its parent's. A subflow's parent is found through the API from ``parent_task_run_id``.

Sinks are opened once per sink configuration (the TRACE_* settings, or ``extras`` given to
``traced``) and shared by every run that uses it: a run gets a view (``ScopedTrace``) over them,
so no thread is started and nothing is opened per run. Subflows and tasks use their root flow's
sinks.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import orjson

from workflow_traces import get_trace
from workflow_traces._build import user_extras
from workflow_traces._context import _SCOPE, Scope
from workflow_traces._diagnostics import report
from workflow_traces._multi import MultiHandler
from workflow_traces._scoped import ScopedTrace
from workflow_traces._trace import MultiTrace

from ._prefect_logs import HOOK_PREFIX, Route, attach_logging, replay_pending

__all__ = [
    "EXTRAS_ATTR",
    "FLOW_HOOKS",
    "TASK_HOOKS",
    "PrefectStateError",
    "attach",
    "begin_call",
    "end_call",
    "flush_sinks",
    "install_hooks",
    "resolve_record",
    "shutdown_sinks",
]

#: The attribute on a traced function holding the ``extras`` given to ``traced``.
EXTRAS_ATTR = "__workflow_traces_extras__"

_MAX_FLOWS = 4096
_MAX_TASKS = 65536
_MAX_DEPTH = 32

_lock = threading.RLock()


class PrefectStateError(Exception):
    """Stands for the cause of a failure Prefect reports without a Python exception (a task that
    returned a Failed state, a crash, a timeout): its message is the state's."""


# -- sinks -------------------------------------------------------------------------------------
_sinks: dict[str, MultiTrace] = {}


def _sink_key(extras: dict[str, Any] | None) -> str:
    if extras is None:
        # The TRACE_* settings: the same environment and folder give the same sinks.
        env = sorted((k, v) for k, v in os.environ.items() if k.startswith("TRACE_"))
        return "settings:" + orjson.dumps([env, os.getcwd()]).decode()
    try:
        return "extras:" + orjson.dumps(extras, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return f"extras-id:{id(extras)}"


def _sinks_for(extras: dict[str, Any] | None) -> MultiTrace:
    key = _sink_key(extras)
    with _lock:
        trace = _sinks.get(key)
        if trace is None or trace.handler.closed:
            # run_id only names the handlers' default folder: every record carries its own.
            trace = get_trace("prefect", extras=dict(extras or {}))
            _sinks[key] = trace
        return trace


def flush_sinks(timeout: float | None = None) -> None:
    """Flush every sink the adapter opened (one deadline each)."""
    with _lock:
        traces = list(_sinks.values())
    for trace in traces:
        trace.flush(timeout)


def shutdown_sinks(timeout: float | None = 30.0) -> None:
    """Close every sink the adapter opened and forget every run."""
    with _lock:
        traces = list(_sinks.values())
        _sinks.clear()
        _runs.clear()
        _tasks.clear()
    for trace in traces:
        trace.close(timeout)


# -- the registry ------------------------------------------------------------------------------
_NO_SCOPE = Scope()


@dataclass(eq=False)
class _Attempts:
    """A run's attempts: which one is open, and when it started."""

    attempt: int = 0
    open: bool = False
    started: datetime | None = None
    view: ScopedTrace | None = None


@dataclass(eq=False)
class _Run(_Attempts):
    """A flow run (or a task run outside any flow), with the sinks its records go to."""

    key: str = ""
    scope: Scope = _NO_SCOPE
    handler: MultiHandler | None = None
    base: MultiTrace | None = None
    record_extras: dict[str, Any] | None = None
    is_root: bool = True
    is_flow: bool = True
    sink_extras: dict[str, Any] | None = None
    final: bool = False
    stages: dict[str, Scope] = field(default_factory=dict)


@dataclass(eq=False)
class _TaskRun(_Attempts):
    run: _Run | None = None
    name: str = ""
    task_run_id: str = ""
    task_run_name: str = ""
    scope: Scope = _NO_SCOPE


_runs: OrderedDict[str, _Run] = OrderedDict()
_tasks: OrderedDict[str, _TaskRun] = OrderedDict()


def _evict() -> None:
    """Keep the registry bounded: forget the oldest finished runs first."""
    if len(_runs) > _MAX_FLOWS:
        for key in [k for k, r in _runs.items() if r.final][: len(_runs) - _MAX_FLOWS]:
            del _runs[key]
        while len(_runs) > 2 * _MAX_FLOWS:
            _runs.popitem(last=False)
    while len(_tasks) > _MAX_TASKS:
        _tasks.popitem(last=False)


def _new_run(
    key: str,
    run_id: str,
    parent_run_id: str | None,
    workflow_name: str,
    job_name: str,
    *,
    is_root: bool,
    is_flow: bool,
    sinks: MultiTrace,
    sink_extras: dict[str, Any] | None,
    record_extras: dict[str, Any],
) -> _Run:
    extras = {**sinks.extras, "workflow_name": workflow_name, "job_name": job_name}
    own = user_extras({**sinks.extras, **record_extras})
    base = MultiTrace(urlparse("multi://"), run_id, parent_run_id, extras, sinks.handler)
    base.level = sinks.level
    return _Run(
        key=key,
        scope=Scope(workflow_name, job_name, None, run_id, parent_run_id),
        handler=sinks.handler,
        base=base,
        record_extras=own,
        is_root=is_root,
        is_flow=is_flow,
        sink_extras=sink_extras,
    )


def _register(reg: _Run) -> _Run:
    with _lock:
        existing = _runs.get(reg.key)
        if existing is not None:
            return existing
        _runs[reg.key] = reg
        _evict()
    replay_pending(reg.key)
    return reg


def _extras_of(fn: Any) -> dict[str, Any] | None:
    extras = getattr(fn, EXTRAS_ATTR, None)
    return extras if isinstance(extras, dict) else None


def _lineage(parent_task_run_id: Any) -> tuple[str | None, str | None]:
    """(parent flow run id, root flow name if the parent is not traced) from the API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(parent_task_run_id)
        if task_run.flow_run_id is None:
            return None, None
        parent_id = str(task_run.flow_run_id)
        if parent_id in _runs:
            return parent_id, None
        flow_run = client.read_flow_run(task_run.flow_run_id)
        for _ in range(_MAX_DEPTH):
            if flow_run.parent_task_run_id is None:
                break
            up = client.read_task_run(flow_run.parent_task_run_id)
            if up.flow_run_id is None:
                break
            known = _runs.get(str(up.flow_run_id))
            if known is not None:
                return parent_id, known.scope.workflow_name
            flow_run = client.read_flow_run(up.flow_run_id)
        return parent_id, client.read_flow(flow_run.flow_id).name


def _ensure_flow(flow_name: str, flow_run: Any, sink_extras: dict[str, Any] | None) -> _Run:
    key = str(flow_run.id)
    reg = _runs.get(key)
    if reg is not None:
        return reg
    parent_id: str | None = None
    workflow = flow_name
    parent: _Run | None = None
    if flow_run.parent_task_run_id is not None:
        try:
            parent_id, root_name = _lineage(flow_run.parent_task_run_id)
        except Exception as exc:
            report(
                "prefect:lineage",
                f"workflow-traces: could not find the parent of flow run {key}: {exc!r}",
            )
            parent_id, root_name = None, None
        parent = _runs.get(parent_id) if parent_id else None
        if parent is not None and parent.scope.workflow_name:
            workflow = parent.scope.workflow_name
        elif root_name:
            workflow = root_name
    # A subflow writes to its parent's sinks unless it was given sinks of its own.
    sinks_extras = parent.sink_extras if parent is not None and sink_extras is None else sink_extras
    sinks = _sinks_for(sinks_extras)
    return _register(
        _new_run(
            key,
            key,
            parent_id,
            workflow,
            flow_name,
            is_root=parent_id is None,
            is_flow=True,
            sinks=sinks,
            sink_extras=sinks_extras,
            record_extras={"flow_run_name": flow_run.name},
        )
    )


def _ensure_task(task: Any, task_run: Any) -> _TaskRun:
    tid = str(task_run.id)
    treg = _tasks.get(tid)
    if treg is not None:
        return treg
    sink_extras = _extras_of(task.fn)
    if task_run.flow_run_id is None:
        # A task called outside any flow: a run of its own, named after the task.
        key = "task-run:" + tid
        run = _runs.get(key) or _register(
            _new_run(
                key,
                tid,
                None,
                task.name,
                task.name,
                is_root=True,
                is_flow=False,
                sinks=_sinks_for(sink_extras),
                sink_extras=sink_extras,
                record_extras={},
            )
        )
    else:
        run = _runs.get(str(task_run.flow_run_id)) or _ensure_untraced_flow(task_run, sink_extras)
    treg = _TaskRun(
        run=run,
        name=task.name,
        task_run_id=tid,
        task_run_name=task_run.name,
        scope=run.scope._replace(stage_name=task.name),
    )
    with _lock:
        treg = _tasks.setdefault(tid, treg)
        _evict()
    return treg


def _ensure_untraced_flow(task_run: Any, sink_extras: dict[str, Any] | None) -> _Run:
    """The flow run of a traced task whose flow is not traced: registered on first sight."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if (
        ctx is not None
        and ctx.flow is not None
        and ctx.flow_run is not None
        and ctx.flow_run.id == task_run.flow_run_id
    ):
        return _ensure_flow(ctx.flow.name, ctx.flow_run, sink_extras)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(task_run.flow_run_id)
        name = client.read_flow(flow_run.flow_id).name
    return _ensure_flow(name, flow_run, sink_extras)


# -- events ------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _emit(
    view: ScopedTrace | None,
    scope: Scope,
    kind: str,
    event: str,
    name: str | None,
    duration: float | None = None,
    error: BaseException | None = None,
    status: str | None = None,
) -> None:
    if view is None:
        return
    token = _SCOPE.set(scope)
    try:
        view.event(kind, event, name=name, duration=duration, error=error, status=status)
    except Exception as exc:
        report(
            f"prefect:event:{kind}",
            f"workflow-traces: the {kind} {event} event of {name!r} was not written: {exc!r}",
        )
    finally:
        _SCOPE.reset(token)


def _view(run: _Run, scope: Scope, extras: dict[str, Any]) -> ScopedTrace:
    assert run.base is not None
    record_extras = {**(run.record_extras or {}), **extras}
    return ScopedTrace(run.base, scope, record_extras=record_extras)


def _run_events(reg: _Run, event: str, **kw: Any) -> None:
    """A flow run's events: workflow and job for a root flow (workflow outermost), job for a
    subflow; a task run outside any flow has none of its own."""
    if not reg.is_flow:
        return
    wf, job = reg.scope.workflow_name, reg.scope.job_name
    if event == "started":
        if reg.is_root:
            _emit(reg.view, reg.scope, "workflow", event, wf, **kw)
        _emit(reg.view, reg.scope, "job", event, job, **kw)
    else:
        _emit(reg.view, reg.scope, "job", event, job, **kw)
        if reg.is_root:
            _emit(reg.view, reg.scope, "workflow", event, wf, **kw)


def _emit_stage(treg: _TaskRun, event: str, **kw: Any) -> None:
    _emit(treg.view, treg.scope, "stage", event, treg.name, **kw)


_ABANDONED = "the attempt ended without a final state and Prefect started another"


def _start(reg: _Run | _TaskRun, when: datetime | None) -> None:
    with _lock:
        previous_open, previous_started = reg.open, reg.started
        reg.attempt += 1
        reg.open = True
        reg.started = when or _now()
        attempt = reg.attempt
    if previous_open:
        _finish_events(
            reg,
            "failed",
            _seconds(previous_started, reg.started),
            PrefectStateError(_ABANDONED),
            None,
        )
    if isinstance(reg, _TaskRun):
        assert reg.run is not None
        reg.view = _view(
            reg.run,
            reg.scope,
            {
                "task_run_id": reg.task_run_id,
                "task_run_name": reg.task_run_name,
                "attempt": attempt,
            },
        )
        _emit_stage(reg, "started")
    else:
        reg.view = _view(reg, reg.scope, {"attempt": attempt})
        _run_events(reg, "started")


def _finish_events(
    reg: _Run | _TaskRun,
    event: str,
    duration: float | None,
    error: BaseException | None,
    status: str | None,
) -> None:
    if isinstance(reg, _TaskRun):
        _emit_stage(reg, event, duration=duration, error=error, status=status)
    else:
        _run_events(reg, event, duration=duration, error=error, status=status)


def _finish(
    reg: _Run | _TaskRun,
    event: str,
    when: datetime | None,
    error: BaseException | None = None,
    status: str | None = None,
) -> None:
    """End the open attempt, if one is open (the wrapper may have ended it already)."""
    with _lock:
        if not reg.open:
            return
        reg.open = False
        duration = _seconds(reg.started, when or _now())
    _finish_events(reg, event, duration, error, status)


def _state_error(state: Any) -> BaseException:
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    result = getattr(data, "result", None)
    if isinstance(result, BaseException):
        return result
    return PrefectStateError(getattr(state, "message", None) or getattr(state, "name", "Failed"))


# -- the hooks ---------------------------------------------------------------------------------
Hook = Callable[[Any, Any, Any], None]


#: A hook's parameters as Prefect passes them by keyword (its runner calls a flow's
#: on_cancellation/on_crashed hooks as ``hook(flow=, flow_run=, state=)``; engines pass them
#: by position).
_HOOK_KEYWORDS = (("flow", "task"), ("flow_run", "task_run"), ("state",))


def _hook(name: str) -> Callable[[Hook], Hook]:
    def name_it(fn: Hook) -> Hook:
        def hook(*args: Any, **kwargs: Any) -> None:
            try:
                values = list(args[:3])
                for names in _HOOK_KEYWORDS[len(values) :]:
                    values.append(next((kwargs[n] for n in names if n in kwargs), None))
                fn(*values)
            except Exception as exc:
                # A hook that raises makes Prefect log an error line; report ours quietly.
                report(f"prefect:hook:{name}", f"workflow-traces: hook {name} failed: {exc!r}")

        hook.__name__ = hook.__qualname__ = HOOK_PREFIX + name
        return hook

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


# -- routing Prefect's run log records ---------------------------------------------------------
def resolve_record(d: dict[str, Any]) -> Route | None:
    """Where a record of Prefect's run loggers goes, from the extras Prefect put on it."""
    key = d.get("flow_run_id")
    task_run_id = d.get("task_run_id")
    reg = _runs.get(key) if isinstance(key, str) else None
    if reg is None:
        if not isinstance(task_run_id, str):
            return None
        reg = _runs.get("task-run:" + task_run_id)
        if reg is None:
            return None
    if reg.handler is None:
        return None
    scope = reg.scope
    if task_run_id is not None:
        stage = d.get("task_name")
        if isinstance(stage, str):
            scope = reg.stages.get(stage) or reg.stages.setdefault(
                stage, scope._replace(stage_name=stage)
            )
    return scope, reg.handler, reg.record_extras
