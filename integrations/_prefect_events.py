"""The lifecycle events of Prefect runs: an attempt's started event and its end event
(succeeded, failed, cancelled), written through the run's view of its sinks with the run's
scope. A flow run emits workflow and job events (a subflow job events), a task run stage
events; a new attempt that starts while one is open ends the open one as failed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflow_traces.core.context import Scope, reset_scope, set_scope
from workflow_traces.core.scoped import ScopedTrace
from workflow_traces.diagnostics import report

from ._prefect_runs import _lock, _Run, _TaskRun, flow_span_id

__all__ = ["PrefectStateError", "_finish", "_now", "_start", "_state_error", "_view"]


class PrefectStateError(Exception):
    """Stands for the cause of a failure Prefect reports without a Python exception (a task that
    returned a Failed state, a crash, a timeout): its message is the state's."""


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
    token = set_scope(scope)
    try:
        view.event(kind, event, name=name, duration=duration, error=error, status=status)
    except Exception as exc:
        report(
            f"prefect:event:{kind}",
            f"workflow-traces: the {kind} {event} event of {name!r} was not written: {exc!r}",
        )
    finally:
        reset_scope(token)


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


def _is_flow_span(reg: _Run, attempt: int) -> bool:
    """Whether the run's span is the one ``flow_span_id`` gives its attempt (a root flow)."""
    return reg.scope.span_id == flow_span_id(reg.scope.run_id or "", attempt)


def _start(reg: _Run | _TaskRun, when: datetime | None) -> None:
    with _lock:
        previous_open, previous_started = reg.open, reg.started
        reg.attempt += 1
        reg.open = True
        reg.started = when or _now()
        attempt = reg.attempt
        # A retry is a span of its own, beside the earlier attempts (taken once the earlier
        # attempt, if still open, has ended in its own span).
        scope = reg.scope.retried() if attempt > 1 else reg.scope
        if isinstance(reg, _Run) and reg.is_flow and _is_flow_span(reg, attempt - 1):
            scope = reg.scope._replace(span_id=flow_span_id(reg.scope.run_id or "", attempt))
    if previous_open:
        _finish_events(
            reg,
            "failed",
            _seconds(previous_started, reg.started),
            PrefectStateError(_ABANDONED),
            None,
        )
    reg.scope = scope
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
