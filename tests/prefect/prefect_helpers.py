"""Helpers for the Prefect adapter's tests: reading runs back, and asking Prefect's own API
what it ran, to compare ids with."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from workflow_traces import Record, Run, open_store

#: Warnings Prefect itself emits that the tests let through; nothing else is filtered (the
#: suite runs with ``filterwarnings = error``). Empty while Prefect 3.9 emits none here.
PREFECT_WARNING_FILTERS: list[str] = []


def read_both(db: Path, files: Path, run_id: str) -> Run:
    """The run from the SQLite store, after checking the file store holds the same records."""
    with open_store(db) as sqlite_store, open_store(files) as file_store:
        from_db = sqlite_store.get_run(run_id)
        from_files = file_store.get_run(run_id)
    assert sorted(r.record_id for r in from_db.records) == sorted(
        r.record_id for r in from_files.records
    ), "the SQLite and file sinks disagree"
    return from_db


def events(run: Run, scope: str | None = None, name: str | None = None) -> list[Record]:
    """The run's lifecycle events, optionally of one scope and one name, in order."""
    out = []
    for rec in run.events:
        if scope is not None and rec.scope != scope:
            continue
        label = {"workflow": rec.workflow_name, "job": rec.job_name, "stage": rec.stage_name}
        if name is not None and label.get(rec.scope or "") != name:
            continue
        out.append(rec)
    return out


def shape(run: Run, scope: str | None = None, name: str | None = None) -> list[tuple[Any, ...]]:
    """(scope, event, name) of each lifecycle event: the sequence the tests compare."""
    out = []
    for rec in events(run, scope, name):
        label = {"workflow": rec.workflow_name, "job": rec.job_name, "stage": rec.stage_name}
        out.append((rec.scope, rec.event, label.get(rec.scope or "")))
    return out


def flow_run_id(state: Any) -> str:
    """The flow run id behind a state returned with ``return_state=True``."""
    return str(state.state_details.flow_run_id)


def prefect_flow_run(flow_run_id: str) -> Any:
    """The flow run as Prefect's API has it."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id))


def prefect_child_flow_runs(flow_run_id: str) -> list[Any]:
    """The subflow runs whose parent is ``flow_run_id``, according to Prefect's API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(flow_run_id)])
                )
            )
        )


def prefect_task_runs(flow_run_id: str) -> list[Any]:
    """The task runs of one flow run (subflow tracking task runs included), from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return list(
            client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
            )
        )
