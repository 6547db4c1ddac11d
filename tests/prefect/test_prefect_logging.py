"""Prefect's run loggers reach our sinks: ``get_run_logger()`` lines and Prefect's own engine
lines, stamped from the extras Prefect puts on them; the handler survives Prefect reconfiguring
logging; our own hooks add no noise."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prefect import flow, get_run_logger, task
from prefect_helpers import PREFECT_WARNING_FILTERS, flow_run_id, prefect_flow_run
from workflow_traces.integrations.prefect import attach_logging, flush, traced

from workflow_traces import Run, open_store

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
USER_HOOK_CALLS: list[str] = []


def user_hook(flow: object, flow_run: object, state: object) -> None:
    USER_HOOK_CALLS.append("called")


@task
@traced
def step(x: int) -> int:
    get_run_logger().warning("step sees %d", x)
    return x


@flow(name="logged", on_completion=[user_hook])
@traced
def logged(x: int) -> int:
    get_run_logger().info("flow line %d", x, extra={"order_id": "A-17"})
    return step(x)


@flow(name="untraced")
def untraced() -> int:
    get_run_logger().info("nobody traces this")
    return 1


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collected() -> Iterator[Collect]:
    handler = Collect()
    for name in RUN_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in RUN_LOGGERS:
        logging.getLogger(name).removeHandler(handler)


def test_run_logger_and_engine_lines_are_stamped(read_run: Callable[..., Run]) -> None:
    state = logged(7, return_state=True)
    run_id = flow_run_id(state)
    run = read_run(run_id)
    by_message = {r.message: r for r in run.logs}

    flow_line = by_message["flow line 7"]
    assert (flow_line.run_id, flow_line.workflow_name, flow_line.job_name) == (
        run_id,
        "logged",
        "logged",
    )
    assert flow_line.stage_name is None
    assert flow_line.extras["order_id"] == "A-17"  # the caller's own extra is kept
    assert flow_line.logger == "prefect.flow_runs"
    assert flow_line.func_name == "logged"  # the user's frame, not the logging machinery's

    task_line = by_message["step sees 7"]
    assert (task_line.level, task_line.stage_name, task_line.job_name) == (
        "WARNING",
        "step",
        "logged",
    )
    assert task_line.extras["task_name"] == "step"

    # Prefect's own lines carry Prefect's extras, not ours: stamped from those.
    finished = [r for r in run.logs if r.message == "Finished in state Completed()"]
    assert sorted((r.logger, r.stage_name) for r in finished) == [
        ("prefect.flow_runs", None),
        ("prefect.task_runs", "step"),
    ]
    for rec in finished:
        assert (rec.run_id, rec.workflow_name, rec.job_name) == (run_id, "logged", "logged")
        assert rec.extras["flow_run_id"] == run_id
        assert rec.extras["flow_run_name"] == prefect_flow_run(run_id).name
    beginning = [r for r in run.logs if r.message.startswith("Beginning flow run")]
    assert len(beginning) == 1 and beginning[0].job_name == "logged"


def test_our_hooks_add_no_lines_but_user_hooks_keep_theirs(
    read_run: Callable[..., Run], collected: Collect
) -> None:
    USER_HOOK_CALLS.clear()
    state = logged(1, return_state=True)
    assert USER_HOOK_CALLS == ["called"]
    ours = [m for m in collected.messages if "'workflow_traces." in m]
    assert ours == []
    assert (
        "Running hook 'user_hook' in response to entering state 'Completed'" in collected.messages
    )
    run = read_run(flow_run_id(state))
    assert not [r for r in run.logs if "'workflow_traces." in r.message]
    assert [r.message for r in run.logs if r.message.startswith("Running hook")] == [
        "Running hook 'user_hook' in response to entering state 'Completed'"
    ]


def test_handler_survives_prefect_reconfiguring_logging(read_run: Callable[..., Run]) -> None:
    from prefect.logging.configuration import setup_logging

    handler = attach_logging()
    setup_logging(incremental=False)  # what Prefect does on import: dictConfig from scratch
    for name in RUN_LOGGERS:
        assert handler not in logging.getLogger(name).handlers  # Prefect removed it
    state = logged(3, return_state=True)
    for name in RUN_LOGGERS:
        assert handler in logging.getLogger(name).handlers  # the run attached it again
    run = read_run(flow_run_id(state))
    messages = {r.message for r in run.logs}
    assert {"flow line 3", "step sees 3", "Finished in state Completed()"} <= messages


def test_untraced_flows_are_left_alone(tmp_path: Path) -> None:
    assert untraced() == 1
    assert logged(2) == 2
    flush(30)
    with open_store(tmp_path / "traces.db") as store:
        runs = store.list_runs()
    assert [r.workflow_name for r in runs] == ["logged"]
    assert not [r for r in store_records(tmp_path) if "nobody traces this" in r]


def store_records(tmp_path: Path) -> list[str]:
    with open_store(tmp_path / "traces.db") as store:
        return [rec.message for s in store.list_runs() for rec in store.get_run(s.run_id).records]


def test_prefect_import_removes_handlers_attached_before_it(tmp_path: Path) -> None:
    """Why the adapter attaches only after Prefect is imported: the first use of Prefect's API
    (``from prefect import flow`` loads ``prefect.main``, which runs ``setup_logging()``; a bare
    ``import prefect`` is lazy and does not yet) drops handlers already on its run loggers.
    Fresh interpreter, no server needed."""
    script = textwrap.dedent(
        """
        import logging
        early = logging.NullHandler()
        logging.getLogger("prefect.flow_runs").addHandler(early)
        import prefect  # lazy: logging is not configured yet
        before_api = early in logging.getLogger("prefect.flow_runs").handlers
        from prefect import flow  # loads prefect.main: setup_logging() runs
        after_api = early in logging.getLogger("prefect.flow_runs").handlers
        from workflow_traces.integrations.prefect import attach_logging
        ours = attach_logging()
        attached = all(ours in logging.getLogger(n).handlers
                       for n in ("prefect.flow_runs", "prefect.task_runs"))
        print(before_api, after_api, attached)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False", "True"], proc.stdout + proc.stderr
