"""A process started with ``context_env()`` joins the run: its records carry the parent's run
id, names and trace with a span of their own, and reach the sinks the parent handed on. Proved
with counts by record id in one SQLite store, for ``subprocess.run([sys.executable, ...])``, a
``bash -c`` that runs a Python script, and a multiprocessing spawn child."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import child_script
import pytest
from trace_helpers import SPAN_ID, spans
from workflow_traces.integrations.plain import job, stage, workflow

from workflow_traces import context_env, open_store
from workflow_traces.core.propagation import inherited, parse_traceparent

SCRIPT = Path(child_script.__file__).resolve()
N = 200


def _count(db: Path, label: str) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT COUNT(DISTINCT record_id) FROM traces WHERE message LIKE ?", (f"{label} %",)
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def _run_parent(db: Path, start_child: object) -> None:
    opened = workflow("parent", run_id="parent-run", trace_type="sqlite", path=str(db))
    with opened, job("j"), stage("launch"):
        start_child(context_env())  # type: ignore[operator]


def _check_joined(db: Path, label: str) -> None:
    run = open_store(db).get_run("parent-run")
    launch = spans(run.records)[("stage", "launch")]
    lines = [r for r in run.logs if r.message.startswith(f"{label} ")]
    assert len(lines) == N == _count(db, label)
    assert len({r.record_id for r in lines}) == N
    assert {r.message for r in lines} == {f"{label} {i}" for i in range(N)}
    for rec in lines:  # the parent's run, names and trace; a span of the child's own
        assert (rec.run_id, rec.workflow_name, rec.job_name, rec.stage_name) == (
            "parent-run",
            "parent",
            "j",
            "launch",
        )
        assert rec.trace_id == launch.trace_id
        assert rec.span_id is not None and SPAN_ID.match(rec.span_id)
        assert rec.span_id != launch.span_id
        assert rec.process != os.getpid()
    assert len({r.span_id for r in lines}) == 1


def test_context_env_names_the_scope_it_is_called_in(tmp_path: Path) -> None:
    assert context_env() == {}
    opened = workflow("w", run_id="r1", trace_type="sqlite", path=str(tmp_path / "t.db"))
    with opened, stage("s") as st:
        env = context_env()
        assert parse_traceparent(env["TRACEPARENT"]) == (st.scope.trace_id, st.scope.span_id)
    assert set(env) == {"TRACEPARENT", "WORKFLOW_TRACES_CONTEXT"}
    assert '"run_id":"r1"' in env["WORKFLOW_TRACES_CONTEXT"]
    assert '"sinks":{"trace_type":"sqlite"' in env["WORKFLOW_TRACES_CONTEXT"]


def test_no_secret_is_handed_on(tmp_path: Path) -> None:
    handlers = [
        {"type": "sqlite", "path": str(tmp_path / "t.db")},
        {"type": "restapi", "api_url": "http://127.0.0.1:9/x", "api_key": "s3cret-value"},
    ]
    with workflow("w", trace_type="multi", handlers=handlers):
        env = context_env()
    assert "s3cret-value" not in env["WORKFLOW_TRACES_CONTEXT"]
    assert "api_key" not in env["WORKFLOW_TRACES_CONTEXT"]


def test_bad_traceparents_are_ignored() -> None:
    good = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert parse_traceparent(good) == ("a" * 32, "b" * 16)
    for bad in ("", "garbage", "00-" + "0" * 32 + "-" + "b" * 16 + "-01", good + "-extra"):
        assert parse_traceparent(bad) is None, bad


def test_a_python_subprocess_joins_the_run(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    def start(env: dict[str, str]) -> None:
        subprocess.run(
            [sys.executable, str(SCRIPT), "get_trace", str(N), "py-child"],
            env={**os.environ, **env},
            check=True,
            timeout=120,
        )

    _run_parent(db, start)
    _check_joined(db, "py-child")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_bash_command_running_a_python_script_joins_the_run(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    def start(env: dict[str, str]) -> None:
        command = f'echo starting; "{sys.executable}" "{SCRIPT}" get_trace {N} bash-child'
        subprocess.run(["bash", "-c", command], env={**os.environ, **env}, check=True, timeout=120)

    _run_parent(db, start)
    _check_joined(db, "bash-child")


def test_a_multiprocessing_spawn_child_joins_the_run(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    def start(env: dict[str, str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=child_script.spawned, args=(env, "get_trace", N, "mp-child"))
        proc.start()
        proc.join(120)
        assert proc.exitcode == 0

    _run_parent(db, start)
    _check_joined(db, "mp-child")


def test_a_workflow_in_a_subprocess_is_a_child_run_whose_span_is_a_child_of_the_caller(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"

    def start(env: dict[str, str]) -> None:
        subprocess.run(
            [sys.executable, str(SCRIPT), "workflow", str(N), "wf-child"],
            env={**os.environ, **env},
            check=True,
            timeout=120,
        )

    _run_parent(db, start)
    store = open_store(db)
    parent = store.get_run("parent-run")
    launch = spans(parent.records)[("stage", "launch")]
    (child_summary,) = parent.child_runs
    child = store.get_run(child_summary.run_id)
    assert child.parent_run_id == "parent-run"
    sp = spans(child.records)
    child_wf, child_stage = sp[("workflow", "wf-child-wf")], sp[("stage", "child-stage")]
    assert child_wf.trace_id == launch.trace_id
    assert child_wf.parent_span_id == launch.span_id
    assert child_stage.parent_span_id == child_wf.span_id
    lines = [r for r in child.logs if r.message.startswith("wf-child ")]
    assert len({r.record_id for r in lines}) == N == _count(db, "wf-child")
    assert {r.span_id for r in lines} == {child_stage.span_id}
    assert store.find_run_by_trace_id(launch.trace_id or "").run_id == "parent-run"


def test_inherited_context_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert inherited() is None
    monkeypatch.setenv("TRACEPARENT", "00-" + "c" * 32 + "-" + "d" * 16 + "-01")
    monkeypatch.setenv("WORKFLOW_TRACES_CONTEXT", '{"run_id": "rr", "workflow_name": "w"}')
    found = inherited()
    assert found is not None
    assert (found.run_id, found.workflow_name, found.trace_id, found.span_id) == (
        "rr",
        "w",
        "c" * 32,
        "d" * 16,
    )
