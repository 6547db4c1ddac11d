"""The run tree: built from lifecycle events, the same from the SQLite and file stores."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from integ_helpers import shape

from workflow_traces import get_trace, open_store, render_tree, trace_scope


def test_a_run_that_died_shows_unfinished_never_succeeded(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from workflow_traces.integrations.plain import workflow, job, stage
        extras = {{"trace_type": "multi", "handlers": [
            {{"type": "file", "path": {str(tmp_path / "files")!r}}},
            {{"type": "sqlite", "path": {str(tmp_path / "traces.db")!r}}}]}}
        with workflow("doomed", run_id="dead-1", **extras) as wf:
            with job("extract"):
                with stage("done") as st:
                    st.info("finished stage")
                with stage("running") as st:
                    st.info("about to die")
                    wf.flush()
                    os._exit(9)  # no end events, no clean exit
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert proc.returncode == 9
    for location in (tmp_path / "traces.db", tmp_path / "files"):
        with open_store(location) as store:
            run = store.get_run("dead-1")
        assert run.status == "unfinished"
        assert shape(run.tree) == [
            (0, "workflow", "doomed", "unfinished", 1),
            (1, "job", "extract", "unfinished", 1),
            (2, "stage", "done", "succeeded", 1),
            (2, "stage", "running", "unfinished", 1),
        ]
        running = run.tree.find("running")
        assert running is not None
        assert running.ended is None and running.duration is None
        assert [r.message for r in running.records] == ["about to die"]


def test_runs_without_lifecycle_events_get_a_root_with_no_status(tmp_path: Path) -> None:
    extras: dict[str, Any] = {"trace_type": "sqlite", "path": str(tmp_path / "t.db")}
    with get_trace("plain-1", extras={**extras, "workflow_name": "legacy"}) as trace:
        trace.info("one")
        with trace_scope(job_name="manual"):
            trace.info("two")
    with open_store(tmp_path / "t.db") as store:
        tree = store.get_run("plain-1").tree
    assert (tree.name, tree.kind, tree.status, tree.children) == ("legacy", "workflow", None, [])
    assert [r.message for r in tree.records] == ["one", "two"]


def test_lone_end_events_and_job_logs_outside_stages(tmp_path: Path) -> None:
    extras: dict[str, Any] = {"trace_type": "file", "path": str(tmp_path)}
    with get_trace("lone-1", extras=extras) as trace, trace_scope(workflow_name="wf"):
        trace.event("workflow", "started", name="wf")
        with trace_scope(job_name="a"):
            trace.event("job", "started", name="a")
            trace.info("job log")
            with trace_scope(stage_name="s"):
                trace.event("stage", "started", name="s")
                trace.info("stage log")
                trace.event("stage", "succeeded", name="s", duration=0.5)
            trace.event("job", "failed", name="a", error=ValueError("x"))
        trace.event("job", "skipped", name="b")  # never started
        trace.event("workflow", "failed", name="wf", duration=1.5)
    with open_store(tmp_path) as store:
        tree = store.get_run("lone-1").tree
    assert shape(tree) == [
        (0, "workflow", "wf", "failed", 1),
        (1, "job", "a", "failed", 1),
        (2, "stage", "s", "succeeded", 1),
        (1, "job", "b", "skipped", 1),
    ]
    a, b = tree.children
    assert a.error == "ValueError: x" and [r.message for r in a.records] == ["job log"]
    assert a.children[0].duration == 0.5 and tree.duration == 1.5
    assert b.started is None and b.ended is not None
    text = render_tree(tree, logs=True)
    assert "workflow wf  failed  1.50s" in text
    assert "job b  skipped" in text
    assert "INFO: stage log" in text
