"""Loading a DAG definition from YAML and TOML (stages named by import path), and the
``workflow-traces run`` / ``runs`` commands, run as real subprocesses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from integ_helpers import shape
from workflow_traces.integrations.dag import Workflow, WorkflowDefinitionError, load_workflow

from workflow_traces import open_store

TASKS = """
from workflow_traces import get_trace

def fetch(day, limit=3):
    get_trace().info(f"fetching {limit} rows for {day}")
    return list(range(limit))

def double(outputs):
    return [x * 2 for x in outputs["fetch"]]

def total(outputs):
    return sum(outputs["extract"]["double"])

_calls = []

def flaky():
    _calls.append(1)
    if len(_calls) == 1:
        raise ConnectionError("first call fails")
    return len(_calls)

def broken():
    raise RuntimeError("always")
"""

YAML = """
name: file-etl
max_workers: 2
params:
  day: "2024-01-01"
trace:
  trace_type: sqlite
  path: ./out/{name}.db
jobs:
  - name: extract
    stages:
      - {{name: fetch, fn: "{module}:fetch"}}
      - {{name: double, fn: "{module}:double", retries: 1, timeout: 30}}
  - name: report
    needs: [extract]
    stages:
      - {{name: total, fn: "{module}:total"}}
      - {{name: flaky, fn: "{module}:flaky", retries: 1}}
"""

TOML = """
name = "file-etl"
max_workers = 2

[params]
day = "2024-01-01"

[trace]
trace_type = "sqlite"
path = "./out/{name}.db"

[[jobs]]
name = "extract"

[[jobs.stages]]
name = "fetch"
fn = "{module}:fetch"

[[jobs.stages]]
name = "double"
fn = "{module}:double"
retries = 1
timeout = 30

[[jobs]]
name = "report"
needs = ["extract"]

[[jobs.stages]]
name = "total"
fn = "{module}:total"

[[jobs.stages]]
name = "flaky"
fn = "{module}:flaky"
retries = 1
"""

EXPECTED = [
    (0, "workflow", "file-etl", "succeeded", 1),
    (1, "job", "extract", "succeeded", 1),
    (2, "stage", "fetch", "succeeded", 1),
    (2, "stage", "double", "succeeded", 1),
    (1, "job", "report", "succeeded", 1),
    (2, "stage", "total", "succeeded", 1),
    (2, "stage", "flaky", "failed", 1),
    (2, "stage", "flaky", "succeeded", 2),
]


def write_definition(folder: Path, kind: str, module: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(TASKS)
    text = (YAML if kind == "yaml" else TOML).format(module=module, name=kind)
    path = folder / f"etl.{kind}"
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind", ["yaml", "toml"])
def test_load_and_run_a_definition_file(tmp_path: Path, kind: str) -> None:
    path = write_definition(tmp_path / "defs", kind, f"tasks_{kind}_load")
    wf = load_workflow(path)
    assert isinstance(wf, Workflow)
    assert [j.name for j in wf.jobs] == ["extract", "report"]
    assert wf.jobs[0].stages[1].retries == 1 and wf.jobs[0].stages[1].timeout == 30
    result = wf.run(params={"limit": 4})
    assert result.ok
    assert result.jobs["report"].stages["total"].output == 12
    assert result.jobs["report"].stages["flaky"].attempts == 2
    with open_store(tmp_path / "out" / f"{kind}.db") as store:
        run = store.get_run(result.run_id)
    assert shape(run.tree) == EXPECTED
    assert "fetching 4 rows for 2024-01-01" in [r.message for r in run.logs]
    assert Workflow.from_file(path).name == "file-etl"


def test_yaml_and_toml_define_the_same_workflow(tmp_path: Path) -> None:
    a = load_workflow(write_definition(tmp_path / "a", "yaml", "tasks_same"))
    b = load_workflow(write_definition(tmp_path / "b", "toml", "tasks_same"))
    assert a.jobs == b.jobs
    assert (a.max_workers, a.params) == (b.max_workers, b.params)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\njobs: []\n", "a workflow needs at least one job"),
        ("jobs: []\n", "name: is required"),
        (
            "name: x\njobs:\n  - name: a\n    stage: []\n",
            "unknown key 'stage' (did you mean 'stages'?)",
        ),
        (
            "name: x\njobs:\n  - name: a\n    stages:\n"
            "      - {name: s, fn: 'os:getcwd', retry: 2}\n",
            "unknown key 'retry' (did you mean 'retries'?)",
        ),
        (
            "name: x\njobs:\n  - name: a\n    stages:\n      - {name: s, fn: getcwd}\n",
            "expected 'package.module:function'",
        ),
        (
            "name: x\njobs:\n"
            "  - {name: a, needs: [b], stages: [{name: s, fn: 'os:getcwd'}]}\n"
            "  - {name: b, needs: [a], stages: [{name: s, fn: 'os:getcwd'}]}\n",
            "cycle: a -> b -> a",
        ),
        ("- just a list\n", "expected a mapping at the top"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_definition_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(Exception) as info:
        load_workflow(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_file_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text("{}")
    with pytest.raises(Exception, match=r"expected a \.yaml, \.yml or \.toml file"):
        load_workflow(path)
    with pytest.raises(WorkflowDefinitionError, match="no attribute"):
        Workflow.from_dict(
            {"name": "x", "jobs": [{"name": "a", "stages": [{"name": "s", "fn": "os:nope"}]}]}
        )


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflow_traces.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_run_prints_the_tree_and_runs_read_it_back(tmp_path: Path) -> None:
    path = write_definition(tmp_path / "defs", "yaml", "tasks_cli")
    proc = cli(
        "run",
        str(path),
        "--param",
        "limit=2",
        "--param",
        "day=2024-02-02",
        "--run-id",
        "cli-1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0].startswith("workflow file-etl  succeeded")
    assert "stage flaky (attempt 1)  failed" in out
    assert "[ConnectionError: first call fails]" in out
    assert "stage flaky (attempt 2)  succeeded" in out
    assert "run_id: cli-1" in out
    db = tmp_path / "out" / "yaml.db"
    assert f"records: {Path('out/yaml.db')}" in out
    with open_store(db) as store:
        run = store.get_run("cli-1")
    assert "fetching 2 rows for 2024-02-02" in [r.message for r in run.logs]

    listing = cli("runs", "list", str(db), cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()
    assert header.split() == [
        "STARTED",
        "(UTC)",
        "STATUS",
        "DURATION",
        "RECORDS",
        "WORKFLOW",
        "RUN_ID",
    ]
    assert row.split()[2:3] == ["succeeded"] and row.endswith("file-etl  cli-1")

    show = cli("runs", "show", str(db), "cli-1", "--logs", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "status:    succeeded" in show.stdout
    assert "INFO: fetching 2 rows for 2024-02-02" in show.stdout
    assert "└── job report  succeeded" in show.stdout

    missing = cli("runs", "show", str(db), "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no records of run 'nope'" in missing.stderr


def test_cli_run_exit_codes(tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "tasks_fail.py").write_text(TASKS)
    failing = folder / "fail.toml"
    failing.write_text(
        textwrap.dedent(
            """
            name = "fails"
            [trace]
            trace_type = "file"
            path = "./out/files"
            [[jobs]]
            name = "a"
            [[jobs.stages]]
            name = "boom"
            fn = "tasks_fail:broken"
            [[jobs]]
            name = "b"
            needs = ["a"]
            [[jobs.stages]]
            name = "never"
            fn = "tasks_fail:broken"
            """
        )
    )
    proc = cli("run", str(failing), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "workflow fails  failed" in proc.stdout
    assert "job b  skipped" in proc.stdout
    assert "RuntimeError: always" in proc.stdout

    bad = cli("run", str(failing), "--param", "oops", cwd=tmp_path)
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr

    missing = folder / "missing.yaml"
    missing.write_text(
        "name: m\njobs:\n  - name: a\n    stages: [{name: s, fn: 'tasks_fail:fetch'}]\n"
    )
    proc = cli("run", str(missing), cwd=tmp_path)
    assert proc.returncode == 2
    assert "stage 's' needs 'day'" in proc.stderr
    assert not (tmp_path / "logs").exists()  # refused before anything ran or was traced

    # A param the workflow does not take (a typo) is refused, naming those it takes.
    proc = cli("run", str(missing), "--param", "dya=2024-06-01", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "workflow-traces run: --param: workflow 'm' takes no param 'dya'; it takes: day, limit"
    )
    assert not (tmp_path / "logs").exists()

    cyclic = folder / "cyclic.yaml"
    cyclic.write_text(
        "name: c\njobs:\n  - {name: a, needs: [a], stages: [{name: s, fn: 'tasks_fail:flaky'}]}\n"
    )
    proc = cli("run", str(cyclic), cwd=tmp_path)
    assert proc.returncode == 2 and "job 'a': needs itself" in proc.stderr
