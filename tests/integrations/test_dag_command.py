"""DAG ``command`` stages: the child process joins the run without the user doing anything
(counted by record id in one SQLite store, with the parent's run, names and trace, and its
span under the stage's), a non-zero exit fails the stage, a timeout kills the child, and the
same stage in a definition file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import command_child
import pytest
from workflow_traces.integrations.dag import (
    Job,
    Stage,
    StageTimeoutError,
    Workflow,
    WorkflowDefinitionError,
    command,
    load_workflow,
)

from workflow_traces import Record, Run, get_trace, open_store
from workflow_traces.core.propagation import parse_traceparent

SCRIPT = Path(command_child.__file__).resolve()
N = 150
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(autouse=True)
def _no_inherited_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACEPARENT", raising=False)
    monkeypatch.delenv("WORKFLOW_TRACES_CONTEXT", raising=False)


def _bash_python(mode: str, label: str) -> str:
    return f'echo "child starting"; "{sys.executable}" "{SCRIPT}" {mode} {N} {label}'


def _count(db: Path, label: str) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT COUNT(DISTINCT record_id) FROM traces WHERE message LIKE ?", (f"{label} %",)
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def _started(run: Run, scope: str, name: str) -> Record:
    (found,) = [
        r
        for r in run.events
        if r.event == "started"
        and r.scope == scope
        and name == {"workflow": r.workflow_name, "job": r.job_name}.get(scope, r.stage_name)
    ]
    return found


def _before() -> None:
    get_trace().info("in the parent")


@needs_bash
def test_a_command_stage_hands_the_run_to_a_bash_child(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    wf = Workflow(
        "etl",
        jobs=[
            Job(
                "j",
                stages=[
                    Stage("before", _before),
                    Stage("shell", command(["bash", "-c", _bash_python("get_trace", "sh")])),
                ],
            )
        ],
        extras={"trace_type": "sqlite", "path": str(db)},
    )
    result = wf.run()
    assert result.ok, result.jobs["j"]
    shell = result.jobs["j"].stages["shell"]
    assert (shell.status, shell.output) == ("succeeded", None)

    run = open_store(db).get_run(result.run_id)
    stage_span = _started(run, "stage", "shell")
    lines = [r for r in run.logs if r.message.startswith("sh ")]
    assert len(lines) == N == _count(db, "sh")
    assert {r.message for r in lines} == {f"sh {i}" for i in range(N)}
    for rec in lines:  # the parent's run and names, its trace, and a span of the child's own
        assert (rec.run_id, rec.workflow_name, rec.job_name, rec.stage_name) == (
            result.run_id,
            "etl",
            "j",
            "shell",
        )
        assert rec.trace_id == stage_span.trace_id
        assert rec.span_id not in (None, stage_span.span_id)
        assert rec.process != os.getpid()
    assert len({r.span_id for r in lines}) == 1
    # The child was handed the stage's span as its parent (W3C TRACEPARENT), the one its own
    # span is made under (core.context.child_span).
    (handed,) = [r for r in run.logs if r.message.startswith("handed ")]
    assert parse_traceparent(handed.message.split()[1]) == (
        stage_span.trace_id,
        stage_span.span_id,
    )
    assert handed.span_id == lines[0].span_id


@needs_bash
def test_a_workflow_in_a_command_child_is_a_child_span_of_the_stage(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    wf = Workflow(
        "etl",
        jobs=[Job("j", stages=[Stage("shell", command(_bash_python("workflow", "wf")))])],
        extras={"trace_type": "sqlite", "path": str(db)},
    )
    result = wf.run()
    assert result.ok, result.jobs["j"]
    store = open_store(db)
    parent = store.get_run(result.run_id)
    stage_span = _started(parent, "stage", "shell")
    (summary,) = parent.child_runs
    child = store.get_run(summary.run_id)
    assert child.parent_run_id == result.run_id
    child_wf = _started(child, "workflow", "wf-wf")
    child_stage = _started(child, "stage", "child-stage")
    assert child_wf.trace_id == stage_span.trace_id
    assert child_wf.parent_span_id == stage_span.span_id
    assert child_stage.parent_span_id == child_wf.span_id
    lines = [r for r in child.logs if r.message.startswith("wf ")]
    assert len({r.record_id for r in lines}) == N == _count(db, "wf")
    assert {r.span_id for r in lines} == {child_stage.span_id}


def test_a_child_configured_by_trace_settings_alone_writes_to_their_sinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("TRACE_TYPE", "sqlite")
    monkeypatch.setenv("TRACE_SQLITE_PATH", str(db))
    argv = [sys.executable, str(SCRIPT), "get_trace", str(N), "env"]
    wf = Workflow("by-env", jobs=[Job("j", stages=[Stage("py", command(argv))])])
    result = wf.run()
    assert result.ok, result.jobs["j"]
    run = open_store(db).get_run(result.run_id)
    lines = [r for r in run.logs if r.message.startswith("env ")]
    assert len(lines) == N == _count(db, "env")
    assert {(r.workflow_name, r.job_name, r.stage_name) for r in lines} == {("by-env", "j", "py")}
    assert {r.trace_id for r in lines} == {_started(run, "stage", "py").trace_id}


@needs_bash
def test_a_command_that_exits_non_zero_fails_its_stage(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    wf = Workflow(
        "failing",
        jobs=[
            Job(
                "j",
                stages=[
                    Stage("exit1", command(["bash", "-c", "exit 1"]), retries=1),
                    Stage("after", _before),
                ],
            ),
            Job("downstream", stages=[Stage("never", _before)], needs=["j"]),
        ],
        extras={"trace_type": "sqlite", "path": str(db)},
    )
    result = wf.run()
    assert result.status == "failed"
    exit1 = result.jobs["j"].stages["exit1"]
    assert (exit1.status, exit1.attempts) == ("failed", 2)
    assert isinstance(exit1.error, subprocess.CalledProcessError)
    assert exit1.error.returncode == 1
    assert result.jobs["j"].stages["after"].status == "skipped"
    assert result.jobs["downstream"].status == "skipped"
    run = open_store(db).get_run(result.run_id)
    failed = [r for r in run.events if r.scope == "stage" and r.event == "failed"]
    assert len(failed) == 2  # one span per attempt
    assert all(r.stage_name == "exit1" and "exit status 1" in r.message for r in failed)
    assert len({r.span_id for r in failed}) == 2
    assert run.status == "failed"


def test_capture_makes_the_standard_output_the_stage_output(sinks: dict[str, Any]) -> None:
    argv = [sys.executable, "-c", "print('hello'); print('world')"]
    wf = Workflow(
        "cap",
        jobs=[
            Job(
                "j",
                stages=[Stage("say", command(argv, capture=True)), Stage("quiet", command(argv))],
            )
        ],
        extras=sinks,
    )
    result = wf.run()
    assert result.ok
    assert result.jobs["j"].stages["say"].output == "hello\nworld\n"
    assert result.jobs["j"].stages["quiet"].output is None


def test_env_and_cwd_reach_the_child(tmp_path: Path, sinks: dict[str, Any]) -> None:
    (tmp_path / "sub").mkdir()
    code = "import os; print(os.environ['GREETING'], os.path.basename(os.getcwd()))"
    cmd = command([sys.executable, "-c", code], cwd=tmp_path / "sub", env={"GREETING": "hi"})
    wf = Workflow("env", jobs=[Job("j", stages=[Stage("s", cmd)])], extras=sinks)
    stage = wf.run().jobs["j"].stages["s"]
    assert stage.status == "succeeded"
    # capture is off: the stage's output is None even though the child printed
    assert stage.output is None
    cmd2 = command(
        [sys.executable, "-c", code], cwd=tmp_path / "sub", env={"GREETING": "hi"}, capture=True
    )
    wf2 = Workflow("env2", jobs=[Job("j", stages=[Stage("s", cmd2)])], extras=sinks)
    assert wf2.run().jobs["j"].stages["s"].output == "hi sub\n"


def test_the_stage_timeout_kills_the_command(sinks: dict[str, Any]) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    wf = Workflow(
        "slow", jobs=[Job("j", stages=[Stage("sleep", command(argv), timeout=1)])], extras=sinks
    )
    stage = wf.run().jobs["j"].stages["sleep"]
    assert stage.status == "failed"
    assert isinstance(stage.error, StageTimeoutError)
    assert "was killed" in str(stage.error)


def test_bad_commands_are_refused() -> None:
    with pytest.raises(ValueError, match="empty string"):
        command("  ")
    with pytest.raises(ValueError, match="non-empty list of strings"):
        command([])
    with pytest.raises(ValueError, match="mapping of strings"):
        command(["true"], env={"N": 1})  # type: ignore[dict-item]
    assert repr(command(["echo", "x"])) == "command(['echo', 'x'])"


def test_a_definition_file_can_name_a_command(tmp_path: Path) -> None:
    db = tmp_path / "file.db"
    python = Path(sys.executable).as_posix()
    text = f"""
        name = "from-file"
        [trace]
        trace_type = "sqlite"
        path = "{db.as_posix()}"
        [[jobs]]
        name = "j"
        [[jobs.stages]]
        name = "py"
        command = ["{python}", "{SCRIPT.as_posix()}", "get_trace", "{N}", "file"]
        [[jobs.stages]]
        name = "fails"
        command = "exit 7"
        """
    path = tmp_path / "wf.toml"
    path.write_text(textwrap.dedent(text))
    result = load_workflow(path).run()
    stages = result.jobs["j"].stages
    assert stages["py"].status == "succeeded"
    assert stages["fails"].status == "failed"
    assert isinstance(stages["fails"].error, subprocess.CalledProcessError)
    assert stages["fails"].error.returncode == 7
    assert _count(db, "file") == N

    bad = tmp_path / "bad.toml"
    bad.write_text(
        textwrap.dedent(
            """
            name = "bad"
            [[jobs]]
            name = "j"
            [[jobs.stages]]
            name = "a"
            command = 3
            [[jobs.stages]]
            name = "b"
            command = "true"
            fn = "os:getcwd"
            """
        )
    )
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(bad)
    assert "stages[0].command: expected a command line" in str(info.value)
    assert "got 3" in str(info.value)
    assert "stages[1]: give either fn or command, not both" in str(info.value)
