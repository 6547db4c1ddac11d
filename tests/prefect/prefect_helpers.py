"""Helpers for the Prefect adapter's tests: reading runs back, and asking Prefect's own API
what it ran, to compare ids with."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

from workflow_traces import Record, Run, open_store

#: Warnings Prefect itself emits that every test here lets through; nothing else is filtered
#: (the suite runs with ``filterwarnings = error``). Prefect 3.9.1 emits none on these paths.
PREFECT_WARNING_FILTERS: list[str] = []

#: Prefect 3.9.1's async flow engine leaves one HTTP connection to its API server unclosed when
#: the event loop of ``asyncio.run(flow())`` closes: the socket is opened while it looks up the
#: server's default result storage (prefect/results.py, ``_read_server_default_result_storage_
#: block_id``, found with tracemalloc) and it happens with no workflow-traces code involved.
#: Only the async test lets this ResourceWarning through, and collects garbage before it ends.
PREFECT_ASYNC_SOCKET_LEAK = "ignore:unclosed <socket.socket:ResourceWarning"

#: Prefect's APILogHandler warns (UserWarning, prefect/logging/handlers.py) when a task run
#: outside any flow logs through ``get_run_logger()``: it has no flow run to send the line to.
#: Only the test of a task called outside a flow lets it through.
PREFECT_NO_FLOW_LOG_WARNING = (
    "ignore:Logger 'prefect.task_runs' attempted to send logs to the API without a flow run id"
    ":UserWarning"
)


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


def prefect_task_runs(flow_run_id: str, name_prefix: str = "", count: int = 1) -> list[Any]:
    """The task runs of one flow run whose name starts with ``name_prefix``, from the API.

    Prefect reports task runs to its server through events, after the fact: this asks again
    (for up to 30 s) until at least ``count`` of them are there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = [
                t
                for t in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
                )
                if t.name.startswith(name_prefix)
            ]
            if len(runs) >= count or time.monotonic() > deadline:
                return runs
            time.sleep(0.1)
