"""A fresh process configured only by TRACE_* variables (and .env files in its working folder)
calls ``get_trace("r1").info(...)`` with no extras; the records are then read back from the
store. This is how the library reaches workers and containers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from settings_helpers import write_env

from workflow_traces import open_store

SCRIPT = """
from workflow_traces import get_trace
trace = get_trace("r1")
trace.info("hello from a worker")
trace.error("and an error")
trace.close()
print(",".join(trace.handler_types))
"""


def run_worker(
    cwd: Path, trace_env: dict[str, str], script: str = SCRIPT
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **trace_env}
    assert all(k.startswith("TRACE_") for k in trace_env)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def messages(location: Path) -> list[tuple[str, str | None, str | None, object]]:
    with open_store(location) as store:
        run = store.get_run("r1")
    return [(r.message, r.workflow_name, r.level, r.extras) for r in run.records]


def test_indexed_variables_only(tmp_path: Path) -> None:
    done = run_worker(
        tmp_path,
        {
            "TRACE_HANDLERS__0__TYPE": "sqlite",
            "TRACE_HANDLERS__0__PATH": "./logs/t.db",
            "TRACE_HANDLERS__1__TYPE": "file",
            "TRACE_HANDLERS__1__PATH": "./logs/files",
            "TRACE_WORKFLOW_NAME": "wf-env",
            "TRACE_ENVIRONMENT": "staging",
        },
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SQLiteHandler,WorkflowFileHandler"
    expected = [
        ("hello from a worker", "wf-env", "INFO", {"environment": "staging"}),
        ("and an error", "wf-env", "ERROR", {"environment": "staging"}),
    ]
    assert messages(tmp_path / "logs" / "t.db") == expected
    assert messages(tmp_path / "logs" / "files") == expected


def test_json_handler_list_only(tmp_path: Path) -> None:
    handlers = [{"type": "file", "path": "./j"}, {"type": "sqlite", "path": "./j.db"}]
    done = run_worker(tmp_path, {"TRACE_HANDLERS": json.dumps(handlers)})
    assert done.returncode == 0, done.stderr
    assert [m[0] for m in messages(tmp_path / "j")] == ["hello from a worker", "and an error"]
    assert [m[0] for m in messages(tmp_path / "j.db")] == ["hello from a worker", "and an error"]


def test_single_type_with_the_short_alias(tmp_path: Path) -> None:
    done = run_worker(tmp_path, {"TRACE_TYPE": "sqlite", "TRACE_SQLITE_PATH": "./single.db"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SQLiteHandler"
    assert len(messages(tmp_path / "single.db")) == 2


def test_profile_files_in_the_working_folder(tmp_path: Path) -> None:
    write_env(
        tmp_path / ".env",
        "TRACE_WORKFLOW_NAME=from-dotenv\nTRACE_HANDLERS__0__TYPE=file\nTRACE_HANDLERS__0__PATH=./base",
    )
    write_env(
        tmp_path / ".env.production",
        "TRACE_HANDLERS__0__PATH=./prod\nTRACE_HANDLERS__1__TYPE=sqlite\n"
        "TRACE_HANDLERS__1__PATH=./prod.db\nTRACE_ENVIRONMENT=production",
    )
    done = run_worker(tmp_path, {"TRACE_PROFILE": "production", "TRACE_WORKFLOW_NAME": "from-env"})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "base").exists()
    expected = ("hello from a worker", "from-env", "INFO", {"environment": "production"})
    assert messages(tmp_path / "prod")[0] == expected
    assert messages(tmp_path / "prod.db")[0] == expected


def test_invalid_setting_stops_the_worker_with_one_clear_line(tmp_path: Path) -> None:
    done = run_worker(
        tmp_path,
        {
            "TRACE_HANDLERS__0__TYPE": "file",
            "TRACE_HANDLERS__1__TYPE": "sqlite",
            "TRACE_HANDLERS__1__BUFFER_SIZE": "-5",
        },
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "workflow_traces.errors.ConfigError: TRACE_HANDLERS__1__BUFFER_SIZE: must be > 0, got -5"
    )
    assert "pydantic" not in done.stderr.lower().replace("pydantic_settings", "")
