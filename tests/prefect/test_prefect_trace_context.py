"""Prefect runs as one trace: the flow run a span, each task attempt a span of its own (its
child), a subflow a child span in the same trace; every log line carries its scope's ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow, get_run_logger, task
from prefect_helpers import PREFECT_WARNING_FILTERS, events, flow_run_id
from workflow_traces.integrations.prefect import flush, traced

from workflow_traces import open_store

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]

CALLS = {"n": 0}


@task(retries=1, retry_delay_seconds=0)
@traced
def twice() -> str:
    CALLS["n"] += 1
    get_run_logger().info("attempt %d", CALLS["n"])
    if CALLS["n"] == 1:
        raise ValueError("first attempt fails")
    return "ok"


@flow(name="tc-child")
@traced
def child_flow() -> None:
    get_run_logger().info("in the subflow")


@flow(name="tc-parent")
@traced
def parent_flow() -> None:
    get_run_logger().info("in the parent")
    twice()
    child_flow()


def test_a_flow_run_is_one_trace_with_a_span_per_attempt(tmp_path: Path) -> None:
    state = parent_flow(return_state=True)
    flush()
    store = open_store(tmp_path / "traces.db")
    run = store.get_run(flow_run_id(state))
    (child_summary,) = run.child_runs
    child = store.get_run(child_summary.run_id)
    trace_ids = {r.trace_id for r in run.records + child.records}
    assert len(trace_ids) == 1 and None not in trace_ids
    wf_started = events(run, "workflow")[0]
    stage_started = [r for r in events(run, "stage") if r.event == "started"]
    assert len(stage_started) == 2
    assert len({r.span_id for r in stage_started}) == 2
    assert {r.parent_span_id for r in stage_started} == {wf_started.span_id}
    lines = {r.message: r for r in run.logs + child.logs}
    assert lines["in the parent"].span_id == wf_started.span_id
    assert lines["attempt 1"].span_id == stage_started[0].span_id
    assert lines["attempt 2"].span_id == stage_started[1].span_id
    child_started = events(child, "job")[0]
    assert child_started.parent_span_id == wf_started.span_id
    assert lines["in the subflow"].span_id == child_started.span_id
    assert store.find_run_by_trace_id(wf_started.trace_id or "").run_id == run.run_id
