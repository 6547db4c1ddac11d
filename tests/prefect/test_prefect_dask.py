"""Prefect on Dask for real: a flow with DaskTaskRunner on a LocalCluster of 2 worker
processes, 20 mapped tasks each logging 50 lines through get_run_logger() and 10 through a
stdlib logger named in TRACE_EXTRA_LOGGERS, TRACE_* pointing every process at one SQLite file.
All 1,200 task lines reach the store (counted by record id and message), stamped with the
workflow, job and stage, the flow's trace id and the task's span; the run tree shows 20 tasks."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from prefect_helpers import PREFECT_WARNING_FILTERS, events, flow_run_id
from workflow_traces.integrations.prefect import flush

from workflow_traces import open_store

prefect_dask = pytest.importorskip("prefect_dask")
from dask_flows import LIB_LINES, RUN_LINES, TASKS, on_dask  # noqa: E402

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.timeout(600),
    *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS),
]


def test_every_task_line_reaches_one_store_from_the_dask_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "traces.db"
    for name in list(os.environ):
        if name.startswith("TRACE_HANDLERS__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", str(db))
    monkeypatch.setenv("TRACE_EXTRA_LOGGERS", "dasklib")
    from workflow_traces.settings.model import TraceSettings

    TraceSettings.clear_cache()
    state = on_dask(return_state=True)
    pids = state.result()
    flush()
    assert len(set(pids)) >= 1 and os.getpid() not in pids  # the tasks ran on the workers
    run_id = flow_run_id(state)
    conn = sqlite3.connect(db)
    try:
        counts = dict(
            conn.execute(
                "SELECT substr(message, 1, 8), COUNT(DISTINCT record_id) FROM traces"
                " WHERE run_id = ? AND (message LIKE 'run line %' OR message LIKE 'lib line %')"
                " GROUP BY 1",
                (run_id,),
            ).fetchall()
        )
        messages = {
            row[0]
            for row in conn.execute(
                "SELECT message FROM traces WHERE run_id = ? AND message LIKE '% line %'",
                (run_id,),
            )
        }
    finally:
        conn.close()
    assert counts == {"run line": TASKS * RUN_LINES, "lib line": TASKS * LIB_LINES}
    expected = {f"run line {i}-{n}" for i in range(TASKS) for n in range(RUN_LINES)}
    expected |= {f"lib line {i}-{n}" for i in range(TASKS) for n in range(LIB_LINES)}
    assert messages == expected

    run = open_store(db).get_run(run_id)
    wf_started = events(run, "workflow")[0]
    stage_starts = [r for r in events(run, "stage") if r.event == "started"]
    assert len(stage_starts) == TASKS
    span_of_task = {r.extras["task_run_id"]: r.span_id for r in stage_starts}  # type: ignore[index]
    assert {r.parent_span_id for r in stage_starts} == {wf_started.span_id}
    lines = [r for r in run.logs if " line " in r.message]
    assert len(lines) == TASKS * (RUN_LINES + LIB_LINES)
    by_span: dict[str | None, int] = {}
    for rec in lines:
        assert (rec.workflow_name, rec.job_name, rec.stage_name) == ("on-dask", "on-dask", "work")
        assert rec.trace_id == wf_started.trace_id
        assert rec.process != os.getpid()
        by_span[rec.span_id] = by_span.get(rec.span_id, 0) + 1
    assert set(by_span) == set(span_of_task.values())
    assert set(by_span.values()) == {RUN_LINES + LIB_LINES}
    stages = [n for n in run.tree.children[0].children if n.kind == "stage"]
    assert len(stages) == TASKS
