"""A cancelled flow run is traced: its lifecycle events end with ``cancelled``.

The cancellation is real, done the way Prefect 3.9 enforces it. A flow called in-process
(``my_flow()``) is never stopped by Prefect when its run is set to Cancelling through the API:
the engine only cancels a run on a SIGTERM whose intent a runner delivered first over its control
channel (``prefect._internal.control_listener``, ``FlowRunEngine.handle_cancellation``). So the
flow is served by a real ``prefect.runner.Runner`` (in a thread of this process) against the
session's temporary server: the runner starts the flow run in a spawned subprocess, the test sets
the run to Cancelling through ``get_client()``, the runner's observer sees it, sends the cancel
intent, terminates the subprocess, runs the flow's ``on_cancellation`` hooks in this process
(the subprocess runs with ``PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS=false``) and sets the
run Cancelled. The started events come from the subprocess, the cancelled events from the hook
in this process; both write to the same TRACE_* file folder and SQLite database.

The runner calls the hooks of its own Flow object (which never runs) by keyword
(``hook(flow=, flow_run=, state=)``), so the flow is built with ``traced_flow`` (hooks in place
from the start; ``@flow`` over ``@traced`` adds them on a Flow's first run only).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.runner import Runner
from prefect.states import Cancelling
from prefect_helpers import PREFECT_WARNING_FILTERS, events, prefect_flow_run, shape
from workflow_traces.integrations.prefect import traced_flow

from workflow_traces import Run, open_store

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]

_WAIT_S = 90.0


def _wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + _WAIT_S
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _started_in_store(db: Path, run_id: str) -> bool:
    """The subprocess's started events are written (by its sink's worker) to the database."""
    if not db.exists():
        return False
    with open_store(db) as store:
        return any(s.run_id == run_id for s in store.list_runs())


class _RunnerThread:
    """A real Prefect Runner serving ``flow_obj``, its event loop in a thread of its own."""

    def __init__(self, flow_obj: Any) -> None:
        self.runner = Runner(name="wt-cancel-runner", query_seconds=1, limit=1)
        self.deployment_id: UUID = self.runner.add_flow(flow_obj, name="wt-cancel")
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="wt-prefect-runner", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.runner.start())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        _wait_for("the runner to start", lambda: self.runner.started or self.error)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self.thread.is_alive() and self.runner.started:
            self.runner.execute_in_background(self.runner.astop).result(_WAIT_S)
        self.thread.join(_WAIT_S)
        assert not self.thread.is_alive(), "the runner did not stop"
        if self.error is not None:
            raise self.error


def test_cancelled_flow_run_ends_cancelled(tmp_path: Path, read_run: Callable[..., Run]) -> None:
    # Defined here so the runner's subprocess receives it by value (cloudpickle). traced_flow:
    # the runner calls the hooks of its own Flow object, which never runs; with ``@flow`` over
    # ``@traced`` the hooks are only added on a Flow's first run (see the adapter's docs).
    @traced_flow(name="cancel-me")
    def cancel_me() -> None:
        get_run_logger().info("waiting to be cancelled")
        Path("body-started").touch()  # the test's folder: the subprocess inherits it
        for _ in range(600):
            time.sleep(0.1)

    served = _RunnerThread(cancel_me)
    served.start()
    try:
        with get_client(sync_client=True) as client:
            flow_run = client.create_flow_run_from_deployment(served.deployment_id)
        run_id = str(flow_run.id)
        # The body runs in the subprocess, and its started events are in the database.
        _wait_for("the flow body to start", (tmp_path / "body-started").exists)
        _wait_for("the started events", lambda: _started_in_store(tmp_path / "traces.db", run_id))
        assert prefect_flow_run(run_id).state.is_running()

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
        final = _wait_for(
            "the runner to cancel the run",
            lambda: (s := prefect_flow_run(run_id).state).is_final() and s,
        )
    finally:
        served.stop()
    assert final.is_cancelled(), final

    run = read_run(run_id)
    assert shape(run) == [
        ("workflow", "started", "cancel-me"),
        ("job", "started", "cancel-me"),
        ("job", "cancelled", "cancel-me"),
        ("workflow", "cancelled", "cancel-me"),
    ]
    ends = events(run)[2:]
    assert [(e.status, e.is_err, e.exc_type) for e in ends] == [("cancelled", False, None)] * 2
    assert all(e.duration is not None and e.duration > 0 for e in ends)
    assert [e.extras["attempt"] for e in run.events] == [1, 1, 1, 1]
    assert {(r.run_id, r.parent_run_id) for r in run.records} == {(run_id, None)}
    assert {(r.workflow_name, r.job_name) for r in run.records} == {("cancel-me", "cancel-me")}
    assert {r.extras["flow_run_name"] for r in run.events} == {flow_run.name}
    assert [r.message for r in run.logs if r.message == "waiting to be cancelled"] == [
        "waiting to be cancelled"
    ]
    assert run.status == "cancelled"
