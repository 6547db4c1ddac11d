"""How ``traced`` is applied: under ``@flow``/``@task`` (first run included), above them,
``traced_flow``/``traced_task``, explicit sinks, untraced parents, tasks outside flows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import Flow, Task, flow, get_run_logger, task
from prefect_helpers import (
    PREFECT_NO_FLOW_LOG_WARNING,
    PREFECT_WARNING_FILTERS,
    events,
    flow_run_id,
    prefect_child_flow_runs,
    shape,
)
from workflow_traces.integrations.prefect import flush, traced, traced_flow, traced_task

from workflow_traces import Run, get_trace, open_store
from workflow_traces.core.scoped import ScopedTrace

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]


def _is_ours(hook: Any) -> bool:
    return getattr(hook, "__name__", "").startswith("workflow_traces.")


def test_first_run_under_flow_matches_later_runs(read_run: Callable[..., Run]) -> None:
    # Fresh objects: Prefect builds them after traced ran, so their hooks come on first call.
    @task
    @traced
    def first_step() -> int:
        return 1

    @flow(name="fresh")
    @traced
    def fresh() -> int:
        return first_step()

    assert not any(_is_ours(h) for h in fresh.on_running_hooks)
    runs = [read_run(flow_run_id(fresh(return_state=True))) for _ in range(2)]
    assert any(_is_ours(h) for h in fresh.on_running_hooks)
    expected = [
        ("workflow", "started", "fresh"),
        ("job", "started", "fresh"),
        ("stage", "started", "first_step"),
        ("stage", "succeeded", "first_step"),
        ("job", "succeeded", "fresh"),
        ("workflow", "succeeded", "fresh"),
    ]
    for run in runs:
        assert shape(run) == expected
        # The first run's opening line, logged before any of our code ran, is there too.
        assert len([r for r in run.logs if r.message.startswith("Beginning flow run")]) == 1
        assert len([r for r in run.logs if r.message.startswith("Finished in state")]) == 2


def test_traced_above_flow_and_task_works_and_keeps_submit(read_run: Callable[..., Run]) -> None:
    @traced
    @task
    def above_task(x: int) -> int:
        get_run_logger().info("above %d", x)
        return x

    @traced
    @flow(name="above")
    def above() -> int:
        return above_task.submit(1).result() + sum(above_task.map([2, 3]).result())

    assert isinstance(above, Flow) and isinstance(above_task, Task)
    assert any(_is_ours(h) for h in above.on_running_hooks)  # installed before any run
    assert any(_is_ours(h) for h in above_task.on_completion_hooks)
    state = above(return_state=True)
    assert state.result() == 6
    run = read_run(flow_run_id(state))
    assert len(events(run, "stage", "above_task")) == 6
    assert {r.stage_name for r in run.logs if r.message.startswith("above ")} == {"above_task"}
    assert shape(run, "workflow") == [
        ("workflow", "started", "above"),
        ("workflow", "succeeded", "above"),
    ]


def test_traced_flow_and_traced_task_pass_options_through(read_run: Callable[..., Run]) -> None:
    calls: list[str] = []

    def mine(obj: Any, run: Any, state: Any) -> None:
        calls.append(state.name)

    @traced_task(retries=1, retry_delay_seconds=0, on_running=[mine])
    def twice() -> str:
        calls.append("body")
        if calls.count("body") == 1:
            raise ValueError("once")
        return "ok"

    @traced_flow(name="combined")
    def combined() -> str:
        return twice()

    assert combined.name == "combined" and twice.retries == 1
    assert _is_ours(twice.on_running_hooks[0]) and twice.on_running_hooks[1] is mine
    state = combined(return_state=True)
    assert state.result() == "ok"
    assert calls == ["Running", "body", "Retrying", "body"]
    run = read_run(flow_run_id(state))
    assert [e.event for e in events(run, "stage", "twice")] == [
        "started",
        "failed",
        "started",
        "succeeded",
    ]

    @traced_flow
    def bare() -> int:
        return 5

    assert bare() == 5


def test_explicit_sinks_and_subflows_use_them(
    read_run: Callable[..., Run], explicit_sinks: dict[str, Any], tmp_path: Path
) -> None:
    @flow(name="inner")
    @traced
    def inner() -> int:
        get_run_logger().info("inner line")
        return 2

    @flow(name="outer")
    @traced(extras=explicit_sinks)
    def outer() -> int:
        return inner()

    state = outer(return_state=True)
    root_id = flow_run_id(state)
    (child,) = prefect_child_flow_runs(root_id)
    run = read_run(root_id, where="explicit")
    child_run = read_run(str(child.id), where="explicit")
    assert shape(run, "workflow")[0] == ("workflow", "started", "outer")
    assert [r.message for r in child_run.logs if r.message == "inner line"] == ["inner line"]
    assert not (tmp_path / "traces.db").exists()  # nothing went to the TRACE_* sinks


def test_untraced_parent_flows(read_run: Callable[..., Run]) -> None:
    @task
    @traced
    def lone_task() -> str:
        get_run_logger().info("lone")
        return "t"

    @flow(name="traced-child")
    @traced
    def traced_child() -> str:
        return "c"

    @flow(name="plain-parent")
    def plain_parent() -> str:
        return lone_task() + traced_child()

    state = plain_parent(return_state=True)
    assert state.result() == "tc"
    root_id = flow_run_id(state)
    (child,) = prefect_child_flow_runs(root_id)
    # The parent is not traced: no flow events of its own, its traced task still is.
    run = read_run(root_id)
    assert shape(run) == [("stage", "started", "lone_task"), ("stage", "succeeded", "lone_task")]
    assert {(r.workflow_name, r.job_name) for r in run.records} == {
        ("plain-parent", "plain-parent")
    }
    # The traced subflow finds its untraced root through the API: its name and id.
    child_run = read_run(str(child.id))
    assert {r.parent_run_id for r in child_run.records} == {root_id}
    assert {r.workflow_name for r in child_run.records} == {"plain-parent"}
    assert shape(child_run) == [
        ("job", "started", "traced-child"),
        ("job", "succeeded", "traced-child"),
    ]


@pytest.mark.filterwarnings(PREFECT_NO_FLOW_LOG_WARNING)
def test_task_outside_any_flow(tmp_path: Path, read_run: Callable[..., Run]) -> None:
    @task
    @traced
    def alone(x: int) -> int:
        get_run_logger().info("alone %d", x)
        return x * 3

    assert alone(4) == 12
    flush(30)
    with open_store(tmp_path / "traces.db") as store:
        (summary,) = store.list_runs()
    run = read_run(summary.run_id)
    assert shape(run) == [("stage", "started", "alone"), ("stage", "succeeded", "alone")]
    assert events(run)[0].extras["task_run_id"] == summary.run_id  # the task run is the run
    assert {r.stage_name for r in run.logs} == {"alone"}


def test_get_trace_inside_is_the_runs_trace(read_run: Callable[..., Run]) -> None:
    seen: dict[str, Any] = {}

    @task
    @traced
    def inside() -> None:
        trace = get_trace()
        seen["task"] = (type(trace), trace.run_id, trace is get_trace())
        trace.info("from get_trace")

    @flow(name="with-get-trace")
    @traced
    def with_get_trace() -> None:
        seen["flow"] = get_trace().run_id
        inside()

    state = with_get_trace(return_state=True)
    run_id = flow_run_id(state)
    assert seen == {"flow": run_id, "task": (ScopedTrace, run_id, True)}
    run = read_run(run_id)
    (line,) = [r for r in run.logs if r.message == "from get_trace"]
    assert (line.workflow_name, line.job_name, line.stage_name) == (
        "with-get-trace",
        "with-get-trace",
        "inside",
    )
    assert line.extras["task_run_id"] == events(run, "stage")[0].extras["task_run_id"]


def test_outside_prefect_the_function_just_runs(tmp_path: Path) -> None:
    @task
    @traced
    def plain(x: int) -> int:
        return x + 1

    assert plain.fn(1) == 2  # the function itself, called without Prefect
    assert not (tmp_path / "traces.db").exists()


def test_bad_arguments_fail_clearly() -> None:
    with pytest.raises(TypeError, match="extras: expected a dict"):
        traced(extras=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="traced: expected a function, a Flow or a Task"):
        traced(42)


def test_generator_task(read_run: Callable[..., Run]) -> None:
    @task
    @traced
    def numbers(n: int) -> Iterator[int]:
        for i in range(n):
            get_run_logger().info("yield %d", i)
            yield i

    @flow(name="gen-flow")
    @traced
    def gen_flow() -> int:
        return sum(numbers(3))

    state = gen_flow(return_state=True)
    assert state.result() == 3
    run = read_run(flow_run_id(state))
    assert shape(run, "stage") == [
        ("stage", "started", "numbers"),
        ("stage", "succeeded", "numbers"),
    ]
    lines = [r for r in run.logs if r.message.startswith("yield ")]
    assert [(r.message, r.stage_name) for r in lines] == [
        (f"yield {i}", "numbers") for i in range(3)
    ]
