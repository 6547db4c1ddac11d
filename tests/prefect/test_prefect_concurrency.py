""".submit(), .map() and async tasks: every task run gets its own stage record set, its own
task_run_id in extras, and its log lines stamped with its stage, whatever thread or event loop
runs it."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections import Counter
from collections.abc import Callable

import pytest
from prefect import flow, get_run_logger, task
from prefect_helpers import (
    PREFECT_ASYNC_SOCKET_LEAK,
    PREFECT_WARNING_FILTERS,
    events,
    flow_run_id,
)
from workflow_traces.integrations.prefect import traced

from workflow_traces import Run, current_scope, get_trace

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]


@task
@traced
def inc(x: int) -> int:
    get_run_logger().info("inc %d", x)
    return x + 1


@flow(name="fan-out")
@traced
def fan_out(n: int) -> dict[str, object]:
    mapped = inc.map(range(n))
    single = inc.submit(100)
    total = sum(f.result() for f in mapped) + single.result()
    return {"total": total, "ids": [str(f.task_run_id) for f in [*mapped, single]]}


@task
@traced
async def aload(x: int) -> tuple[int, str | None]:
    await asyncio.sleep(0.01 * (3 - x % 3))  # finish out of order
    get_run_logger().info("aload %d", x)
    get_trace().info(f"trace line {x}")  # the run's trace, stamped like the logger's lines
    return x, current_scope().stage_name


@flow(name="async-fan")
@traced
async def async_fan(n: int) -> list[tuple[int, str | None]]:
    return list(await asyncio.gather(*(aload(i) for i in range(n))))


def _per_task_run(run: Run, stage: str) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for rec in events(run, "stage", stage):
        assert rec.extras is not None
        seen.setdefault(rec.extras["task_run_id"], []).append(rec.event or "")
    return seen


def test_submit_and_map_give_one_stage_set_per_task_run(read_run: Callable[..., Run]) -> None:
    state = fan_out(5, return_state=True)
    result = state.result()
    assert result["total"] == sum(range(1, 6)) + 101
    run = read_run(flow_run_id(state))

    per_run = _per_task_run(run, "inc")
    assert sorted(per_run) == sorted(result["ids"])  # the futures' task run ids
    assert all(seq == ["started", "succeeded"] for seq in per_run.values())

    # Each "inc k" line is stamped with its own task run, from whichever worker thread ran it.
    lines = [r for r in run.logs if r.message.startswith("inc ")]
    assert sorted(r.message for r in lines) == sorted([f"inc {k}" for k in range(5)] + ["inc 100"])
    assert {r.stage_name for r in lines} == {"inc"}
    assert {r.extras["task_run_id"] for r in lines} == set(per_run)
    assert {(r.workflow_name, r.job_name) for r in lines} == {("fan-out", "fan-out")}
    assert len({r.thread for r in lines}) >= 1
    finished = [r for r in run.logs if r.message.startswith("Finished in state")]
    assert Counter(r.stage_name for r in finished) == {"inc": 6, None: 1}


@pytest.mark.filterwarnings(PREFECT_ASYNC_SOCKET_LEAK)
def test_async_tasks_keep_their_names(read_run: Callable[..., Run]) -> None:
    state = asyncio.run(async_fan(4, return_state=True))
    assert state.is_completed()
    results = state.result()
    if inspect.isawaitable(results):
        results = asyncio.run(results)  # type: ignore[arg-type]
    assert sorted(results) == [(i, "aload") for i in range(4)]
    run = read_run(flow_run_id(state))

    per_run = _per_task_run(run, "aload")
    assert len(per_run) == 4
    assert all(seq == ["started", "succeeded"] for seq in per_run.values())
    for prefix in ("aload ", "trace line "):
        lines = [r for r in run.logs if r.message.startswith(prefix)]
        assert len(lines) == 4, prefix
        assert {(r.workflow_name, r.job_name, r.stage_name) for r in lines} == {
            ("async-fan", "async-fan", "aload")
        }
        assert {r.run_id for r in lines} == {flow_run_id(state)}
        assert {r.extras["task_run_id"] for r in lines} == set(per_run)
    assert [e.event for e in events(run, "workflow")] == ["started", "succeeded"]
    gc.collect()  # Prefect's leaked socket (see PREFECT_ASYNC_SOCKET_LEAK) goes now, not later
