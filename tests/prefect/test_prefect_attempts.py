"""Retries and failures: one stage (or job/workflow) record set per attempt, failures carry their
exception, and a failure Prefect reports through its hooks is not counted twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prefect import flow, get_run_logger, task
from prefect.states import Failed
from prefect_helpers import (
    PREFECT_WARNING_FILTERS,
    events,
    flow_run_id,
    prefect_flow_run,
    prefect_task_runs,
    shape,
)
from workflow_traces.integrations.prefect import flush, traced

from workflow_traces import Run, open_store

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]

CALLS: dict[str, int] = {}


@task(retries=2, retry_delay_seconds=0)
@traced
def flaky(fail_times: int) -> str:
    CALLS["flaky"] = CALLS.get("flaky", 0) + 1
    get_run_logger().info("flaky attempt %d", CALLS["flaky"])
    if CALLS["flaky"] <= fail_times:
        raise ValueError(f"boom {CALLS['flaky']}")
    return "ok"


@flow(name="retrying")
@traced
def retrying(fail_times: int) -> str:
    return flaky(fail_times)


@flow(name="flaky-flow", retries=1, retry_delay_seconds=0)
@traced
def flaky_flow() -> str:
    CALLS["flow"] = CALLS.get("flow", 0) + 1
    if CALLS["flow"] == 1:
        raise RuntimeError("first flow attempt fails")
    return "ok"


@task
@traced
def broken() -> None:
    raise KeyError("missing")


@task
@traced
def returns_failed() -> object:
    return Failed(message="bad input, no exception")


@flow(name="failing")
@traced
def failing(kind: str) -> str:
    if kind == "task":
        broken()
    if kind == "state":
        state = returns_failed(return_state=True)
        assert state.is_failed()
        return "survived"
    if kind == "crash":
        raise Crash("the process goes away")
    return "unreachable"


class Crash(BaseException):
    """Not an Exception: Prefect takes it as a crash."""


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def test_task_retries_give_one_stage_set_per_attempt(read_run: Callable[..., Run]) -> None:
    state = retrying(2, return_state=True)
    assert state.result() == "ok"
    run = read_run(flow_run_id(state))
    (task_run,) = prefect_task_runs(flow_run_id(state), "flaky")
    assert CALLS["flaky"] == 3

    stage = events(run, "stage", "flaky")
    assert [e.event for e in stage] == ["started", "failed"] * 2 + ["started", "succeeded"]
    assert [e.extras["attempt"] for e in stage] == [1, 1, 2, 2, 3, 3]
    assert {e.extras["task_run_id"] for e in stage} == {str(task_run.id)}
    assert [(e.exc_type, e.exc_message) for e in stage if e.event == "failed"] == [
        ("ValueError", "boom 1"),
        ("ValueError", "boom 2"),
    ]
    # Each attempt's own log line sits between that attempt's events.
    lines = [r for r in run.records if r.kind == "event" or r.message.startswith("flaky attempt")]
    order = [(r.event or r.message) for r in lines if r.stage_name == "flaky"]
    assert order == [
        "started", "flaky attempt 1", "failed",
        "started", "flaky attempt 2", "failed",
        "started", "flaky attempt 3", "succeeded",
    ]  # fmt: skip
    assert [n.status for n in run.tree.find_all("flaky", "stage")] == [
        "failed",
        "failed",
        "succeeded",
    ]
    assert run.status == "succeeded"


def test_retries_exhausted_fail_once_per_attempt(read_run: Callable[..., Run]) -> None:
    state = retrying(5, return_state=True)
    assert state.is_failed()
    run = read_run(flow_run_id(state))
    stage = events(run, "stage", "flaky")
    # Three attempts, each failed once: the wrapper's failure and Prefect's on_failure hook
    # for the last attempt are one event, not two.
    assert [e.event for e in stage] == ["started", "failed"] * 3
    assert [e.exc_message for e in stage if e.event == "failed"] == ["boom 1", "boom 2", "boom 3"]
    assert shape(run, "workflow")[-1] == ("workflow", "failed", "retrying")
    assert run.status == "failed"


def test_flow_retries_give_one_set_per_flow_attempt(read_run: Callable[..., Run]) -> None:
    state = flaky_flow(return_state=True)
    assert state.result() == "ok"
    run = read_run(flow_run_id(state))
    assert shape(run) == [
        ("workflow", "started", "flaky-flow"),
        ("job", "started", "flaky-flow"),
        ("job", "failed", "flaky-flow"),
        ("workflow", "failed", "flaky-flow"),
        ("workflow", "started", "flaky-flow"),
        ("job", "started", "flaky-flow"),
        ("job", "succeeded", "flaky-flow"),
        ("workflow", "succeeded", "flaky-flow"),
    ]
    assert [e.extras["attempt"] for e in run.events] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert events(run, "job")[1].exc_type == "RuntimeError"
    assert run.status == "succeeded"


def test_task_exception_fails_stage_and_flow_once(read_run: Callable[..., Run]) -> None:
    state = failing("task", return_state=True)
    assert state.is_failed()
    run = read_run(flow_run_id(state))
    assert shape(run, "stage") == [("stage", "started", "broken"), ("stage", "failed", "broken")]
    assert events(run, "stage")[1].exc_type == "KeyError"
    assert shape(run, "workflow") == [
        ("workflow", "started", "failing"),
        ("workflow", "failed", "failing"),
    ]
    (wf_failed,) = events(run, "workflow")[1:]
    assert wf_failed.exc_type == "KeyError" and wf_failed.is_err
    assert run.status == "failed"


def test_failed_state_without_exception_comes_from_the_hook(read_run: Callable[..., Run]) -> None:
    state = failing("state", return_state=True)
    assert state.result() == "survived"
    run = read_run(flow_run_id(state))
    stage = events(run, "stage", "returns_failed")
    assert [e.event for e in stage] == ["started", "failed"]
    assert (stage[1].exc_type, stage[1].exc_message) == (
        "PrefectStateError",
        "bad input, no exception",
    )
    assert run.status == "succeeded"


def test_crashed_flow_ends_failed_with_status_crashed(
    read_run: Callable[..., Run], tmp_path: Path
) -> None:
    with pytest.raises(Crash):
        failing("crash")
    flush(30)
    with open_store(tmp_path / "traces.db") as store:
        (summary,) = store.list_runs(workflow="failing")
    assert prefect_flow_run(summary.run_id).state.is_crashed()
    run = read_run(summary.run_id)
    ends = [e for e in run.events if e.event != "started"]
    assert [(e.scope, e.event, e.status) for e in ends] == [
        ("job", "failed", "crashed"),
        ("workflow", "failed", "crashed"),
    ]
    assert run.status == "failed"
