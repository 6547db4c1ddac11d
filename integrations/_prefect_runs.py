"""Prefect flow and task runs as workflow-traces runs: the run registry and the sinks its runs
share. The lifecycle events are written by ``_prefect_events``, from the state hooks in
``_prefect_hooks``.

Mapping: a flow run is a run (run_id = its flow run id; parent_run_id = its parent flow run's id
for a subflow); workflow_name is the root flow's name, job_name the running flow's name,
stage_name the task's name. A root flow emits workflow and job events, a subflow job events,
a task run stage events: one started event per attempt and one end event per attempt.
A subflow's parent is found through the API from ``parent_task_run_id``.

Sinks are opened once per sink configuration (the TRACE_* settings, or ``extras`` given to
``traced``) and shared by every run that uses it: a run gets a view (``ScopedTrace``) over them,
so no thread is started and nothing is opened per run. Subflows and tasks use their root flow's
sinks.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import orjson

from workflow_traces import get_trace
from workflow_traces.core.context import Scope
from workflow_traces.core.propagation import remote_parent
from workflow_traces.core.scoped import ScopedTrace
from workflow_traces.core.stdlib import user_extras
from workflow_traces.core.trace import MultiTrace
from workflow_traces.diagnostics import report
from workflow_traces.pipeline.multi import MultiHandler

from ._prefect_logs import Route, replay_pending

__all__ = [
    "EXTRAS_ATTR",
    "_Run",
    "_TaskRun",
    "_ensure_flow",
    "_ensure_task",
    "_extras_of",
    "_lock",
    "_runs",
    "_tasks",
    "flush_sinks",
    "resolve_record",
    "shutdown_sinks",
]

#: The attribute on a traced function holding the ``extras`` given to ``traced``.
EXTRAS_ATTR = "__workflow_traces_extras__"

_MAX_FLOWS = 4096
_MAX_TASKS = 65536
_MAX_DEPTH = 32

_lock = threading.RLock()


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
    parent_scope: Scope = _NO_SCOPE,
    attempt: int = 1,
) -> _Run:
    extras = {**sinks.extras, "workflow_name": workflow_name, "job_name": job_name}
    own = user_extras({**sinks.extras, **record_extras})
    base = MultiTrace(urlparse("multi://"), run_id, parent_run_id, extras, sinks.handler)
    base.level = sinks.level
    return _Run(
        key=key,
        scope=_run_scope(
            parent_scope, workflow_name, job_name, run_id, parent_run_id, is_flow, attempt
        ),
        handler=sinks.handler,
        base=base,
        record_extras=own,
        is_root=is_root,
        is_flow=is_flow,
        sink_extras=sink_extras,
    )


def flow_span_id(flow_run_id: str, attempt: int) -> str:
    """The span id of a flow run's attempt, the same in every process: a task on a Dask or Ray
    worker names its flow's span as its parent without being told it."""
    import hashlib

    return hashlib.sha256(f"{flow_run_id}:{max(1, attempt)}".encode()).hexdigest()[:16]


def _run_scope(
    parent_scope: Scope,
    workflow_name: str,
    job_name: str,
    run_id: str,
    parent_run_id: str | None,
    is_flow: bool,
    attempt: int = 1,
) -> Scope:
    """A run's scope and span. A subflow's span is a child of the scope it was started in. A
    root flow run's trace id is its flow run id (a UUID: 32 hex digits) and its span id comes
    from that id too, so every process that runs its tasks finds the same ids; inside a remote
    parent (an active OpenTelemetry span, TRACEPARENT) it joins that trace instead."""
    if parent_scope.trace_id is not None or not is_flow:
        return parent_scope.child(workflow_name, job_name, None, run_id, parent_run_id)
    remote = remote_parent()
    trace_id = remote[0] if remote is not None else run_id.replace("-", "").lower()
    if len(trace_id) != 32 or trace_id.strip("0123456789abcdef"):
        return parent_scope.child(workflow_name, job_name, None, run_id, parent_run_id)
    span = flow_span_id(run_id, attempt)
    parent_span = remote[1] if remote is not None else None
    return Scope(workflow_name, job_name, None, run_id, parent_run_id, trace_id, span, parent_span)


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
    parent_scope = _NO_SCOPE
    if parent is not None:
        parent_task = _tasks.get(str(flow_run.parent_task_run_id))
        parent_scope = parent_task.scope if parent_task is not None else parent.scope
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
            parent_scope=parent_scope,
            attempt=int(getattr(flow_run, "run_count", 0) or 0),
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
        scope=run.scope.child(
            run.scope.workflow_name,
            run.scope.job_name,
            task.name,
            run.scope.run_id,
            run.scope.parent_run_id,
        ),
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
    treg = _tasks.get(task_run_id) if isinstance(task_run_id, str) else None
    if treg is not None:  # a traced task: its current attempt's scope and span
        scope = treg.scope
    elif task_run_id is not None:
        stage = d.get("task_name")
        if isinstance(stage, str):
            scope = reg.stages.get(stage) or reg.stages.setdefault(
                stage, scope._replace(stage_name=stage)
            )
    return scope, reg.handler, reg.record_extras
