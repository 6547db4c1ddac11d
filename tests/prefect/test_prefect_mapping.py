"""Names and ids: a root flow, a subflow, a sub-subflow and tasks map onto workflow, job, stage,
run_id and parent_run_id exactly as Prefect ran them (ids compared with Prefect's own API)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prefect import flow, get_run_logger, task
from prefect_helpers import (
    PREFECT_WARNING_FILTERS,
    events,
    flow_run_id,
    prefect_child_flow_runs,
    prefect_flow_run,
    prefect_task_runs,
    shape,
)
from workflow_traces.integrations.prefect import traced

from workflow_traces import Run

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]


@task(task_run_name="extract-{n}")
@traced
def extract(n: int) -> list[int]:
    get_run_logger().info("extracting %d rows", n)
    return list(range(n))


@task
@traced
def square(x: int) -> int:
    return x * x


@flow(name="audit-leaf")
@traced
def audit(total: int) -> int:
    get_run_logger().info("auditing %d", total)
    return total


@flow(name="load-sub")
@traced
def load(rows: list[int]) -> int:
    get_run_logger().info("loading %d rows", len(rows))
    total = sum(square.map(rows).result())
    return audit(total)


@flow(name="etl-root")
@traced
def etl(n: int = 3) -> int:
    rows = extract(n)
    return load(rows)


def test_names_and_ids_follow_the_flow_runs(read_run: Callable[..., Run]) -> None:
    state = etl(3, return_state=True)
    assert state.is_completed()
    assert state.result() == 0 + 1 + 4
    root_id = flow_run_id(state)
    (sub,) = prefect_child_flow_runs(root_id)
    (leaf,) = prefect_child_flow_runs(str(sub.id))
    sub_id, leaf_id = str(sub.id), str(leaf.id)

    root = read_run(root_id)
    sub_run = read_run(sub_id)
    leaf_run = read_run(leaf_id)

    # run_id is the flow run id; parent_run_id the parent flow run's; workflow the root's name.
    assert {r.run_id for r in root.records} == {root_id}
    assert {r.parent_run_id for r in root.records} == {None}
    assert {r.run_id for r in sub_run.records} == {sub_id}
    assert {r.parent_run_id for r in sub_run.records} == {root_id}
    assert {r.parent_run_id for r in leaf_run.records} == {sub_id}
    for run in (root, sub_run, leaf_run):
        assert {r.workflow_name for r in run.records} == {"etl-root"}
    # job is the flow that is running: the subflow's own name inside it.
    assert {r.job_name for r in root.records} == {"etl-root"}
    assert {r.job_name for r in sub_run.records} == {"load-sub"}
    assert {r.job_name for r in leaf_run.records} == {"audit-leaf"}
    assert [c.run_id for c in root.child_runs] == [sub_id]
    assert [c.run_id for c in sub_run.child_runs] == [leaf_id]

    # stage is the task's name, not the task run's ("extract-3"); the run's name is in extras.
    (extract_run,) = prefect_task_runs(root_id, "extract")
    assert extract_run.name == "extract-3"
    extract_events = events(root, "stage", "extract")
    assert [e.event for e in extract_events] == ["started", "succeeded"]
    for rec in extract_events:
        assert rec.extras is not None
        assert rec.extras["task_run_id"] == str(extract_run.id)
        assert rec.extras["task_run_name"] == "extract-3"
    (line,) = [r for r in root.logs if r.message == "extracting 3 rows"]
    assert (line.stage_name, line.extras["task_run_id"]) == ("extract", str(extract_run.id))

    # flow_run_name goes into extras, as Prefect named the run.
    names = {prefect_flow_run(i).name for i in (root_id,)}
    assert {r.extras["flow_run_name"] for r in root.records if r.extras} == names
    assert {r.extras["flow_run_name"] for r in sub_run.records if r.extras} == {sub.name}

    # Flow-level records carry no stage.
    flow_lines = [r for r in root.logs if r.logger == "prefect.flow_runs"]
    assert flow_lines and all(r.stage_name is None for r in flow_lines)


def test_lifecycle_events_per_scope(read_run: Callable[..., Run]) -> None:
    state = etl(2, return_state=True)
    root_id = flow_run_id(state)
    (sub,) = prefect_child_flow_runs(root_id)
    root = read_run(root_id)
    sub_run = read_run(str(sub.id))

    # The root flow: workflow and job events around its stages; the subflow: job events only.
    assert shape(root, "workflow") == [
        ("workflow", "started", "etl-root"),
        ("workflow", "succeeded", "etl-root"),
    ]
    assert shape(root, "job") == [("job", "started", "etl-root"), ("job", "succeeded", "etl-root")]
    assert shape(root)[:2] == [("workflow", "started", "etl-root"), ("job", "started", "etl-root")]
    assert shape(root)[-2:] == [
        ("job", "succeeded", "etl-root"),
        ("workflow", "succeeded", "etl-root"),
    ]
    assert shape(sub_run, "workflow") == []
    assert shape(sub_run, "job") == [
        ("job", "started", "load-sub"),
        ("job", "succeeded", "load-sub"),
    ]
    assert sorted(shape(sub_run, "stage")) == sorted(
        [("stage", "started", "square"), ("stage", "succeeded", "square")] * 2
    )

    # End events carry durations from the run's state times; the store reads the status back.
    for rec in root.events + sub_run.events:
        if rec.event == "started":
            assert rec.status == "running" and rec.duration is None
        else:
            assert rec.status == "succeeded"
            assert rec.duration is not None and rec.duration >= 0
    (wf_end,) = events(root, "workflow")[1:]
    assert wf_end.duration is not None
    flow_run = prefect_flow_run(root_id)
    prefect_seconds = (flow_run.end_time - flow_run.start_time).total_seconds()
    assert wf_end.duration <= prefect_seconds + 0.5
    assert root.status == "succeeded"

    tree = root.tree
    assert (tree.kind, tree.name, tree.status) == ("workflow", "etl-root", "succeeded")
    (job,) = tree.children
    assert (job.kind, job.name, job.status) == ("job", "etl-root", "succeeded")
    assert [(n.kind, n.name, n.status) for n in job.children] == [("stage", "extract", "succeeded")]
