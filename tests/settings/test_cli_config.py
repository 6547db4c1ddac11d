"""``workflow-traces config show`` and ``config check``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from settings_helpers import SECRET, SECRET2, write_env

from workflow_traces import get_trace, open_store
from workflow_traces.cli.main import main
from workflow_traces.settings.probe import PROBE_RUN_ID


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["config", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def show_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, dict[str, Any]]:
    code, out, err = cli(capsys, "show", "--json", *argv)
    assert code == 0, err
    return {row["key"]: row for row in json.loads(out)["values"]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def layered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One value from each source: .env, profile file, environment; the rest defaults."""
    write_env(
        tmp_path / ".env",
        "TRACE_WORKFLOW_NAME=from-dotenv\nTRACE_JOB_NAME=from-dotenv\n"
        "TRACE_HANDLERS__0__TYPE=sqlite\nTRACE_HANDLERS__0__PATH=./t.db",
    )
    write_env(tmp_path / ".env.production", "TRACE_JOB_NAME=from-profile\nTRACE_ENVIRONMENT=prod")
    monkeypatch.setenv("TRACE_STAGE_NAME", "from-env")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "restapi")
    monkeypatch.setenv("TRACE_HANDLERS__1__API_URL", "https://api.example.com/logs")
    monkeypatch.setenv("TRACE_HANDLERS__1__API_KEY", SECRET)
    return tmp_path


def test_show_names_the_source_of_each_value(
    layered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = show_json(capsys, "--profile", "production")
    assert rows["workflow_name"]["value"] == "from-dotenv"
    assert (rows["workflow_name"]["source"], rows["workflow_name"]["file"]) == (".env file", ".env")
    assert rows["job_name"]["value"] == "from-profile"
    assert rows["job_name"]["source"] == "profile file"
    assert rows["job_name"]["file"] == ".env.production"
    assert rows["stage_name"] == {
        "key": "stage_name",
        "value": "from-env",
        "source": "environment",
        "variable": "TRACE_STAGE_NAME",
        "file": None,
    }
    assert rows["handlers[0].path"]["variable"] == "TRACE_HANDLERS__0__PATH"
    assert rows["handlers[0].buffer_size"] == {
        "key": "handlers[0].buffer_size",
        "value": 100,
        "source": "default",
        "variable": None,
        "file": None,
    }
    assert rows["handlers[1].api_key"]["value"] == "**********"
    assert rows["trace_type"]["value"] == "multi"


def test_show_extras_win(layered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = show_json(capsys, "--extras", '{"stage_name": "from-extras", "trace_type": "file"}')
    assert rows["stage_name"]["value"] == "from-extras"
    assert rows["stage_name"]["source"] == "extras"
    assert rows["trace_type"]["source"] == "extras"
    assert rows["handlers[0].type"]["value"] == "file"
    assert rows["handlers[0].path"]["value"] == "./logs"
    assert "handlers[1].type" not in rows


def test_show_text(layered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "show", "--profile", "production")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "env file:    .env (read)"
    assert lines[1] == "profile:     production -> .env.production (read)"
    by_key = {line.split()[0]: line for line in lines[4:] if line.strip()}
    assert by_key["job_name"].split(None, 2)[1:] == [
        "from-profile",
        "profile file .env.production: TRACE_JOB_NAME",
    ]
    assert by_key["stage_name"].endswith("environment: TRACE_STAGE_NAME")
    assert by_key["handlers[0].queue_size"].split()[1:] == ["200000", "default"]
    assert by_key["handlers[1].api_key"].split()[1] == "**********"
    assert SECRET not in out + err


def test_show_invalid_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__1__BUFFER_SIZE", "-5")
    monkeypatch.setenv("TRACE_HANDLERS__1__API_KEY", SECRET)
    code, out, err = cli(capsys, "show")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "workflow-traces config show: TRACE_HANDLERS__1__BUFFER_SIZE: must be > 0, got -5",
        "workflow-traces config show: TRACE_HANDLERS__1__API_KEY: unknown key; valid keys: "
        "block_timeout, buffer_size, flush_interval, level, max_records_per_second, overflow, "
        "path, queue_bytes, queue_size, redact, redact_keys, redact_patterns, sample",
    ]
    assert SECRET not in err


def test_check_writes_reads_back_and_removes_a_probe_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", "./files")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__1__PATH", "./t.db")
    users = get_trace("the-users-run")  # a run of the user's, there before the check
    users.info("mine")
    users.close()
    code, out, err = cli(capsys, "check")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ok   handlers[0] file ./files: wrote a probe record, read it back and removed it",
        "ok   handlers[1] sqlite ./t.db: wrote a probe record, read it back and removed it",
        "2 of 2 sink(s) ok",
    ]
    # No probe run among the user's runs; the user's own run is untouched.
    for location in (tmp_path / "files", tmp_path / "t.db"):
        with open_store(location) as store:
            assert [r.run_id for r in store.list_runs()] == ["the-users-run"]
            assert [r.message for r in store.get_run("the-users-run").records] == ["mine"]
    assert not list((tmp_path / "files").glob(f"*{PROBE_RUN_ID}*"))


def test_check_reports_an_unwritable_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TRACE_TYPE", "file")
    monkeypatch.setenv("TRACE_PATH", str(tmp_path / "a-file" / "logs"))
    code, out, err = cli(capsys, "check")
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(f"FAIL handlers[0] file {tmp_path}/a-file/logs: cannot open: path: ")
    assert out.splitlines() == ["0 of 1 sink(s) ok"]


@pytest.mark.network
def test_check_network_sinks_reachable_and_not(
    httpserver: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    httpserver.expect_request("/logs").respond_with_data("", status=405)
    down = closed_port()
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "restapi")
    monkeypatch.setenv("TRACE_HANDLERS__0__SERVICE_TYPE", "datadog")
    monkeypatch.setenv("TRACE_HANDLERS__0__API_URL", httpserver.url_for("/logs"))
    monkeypatch.setenv("TRACE_HANDLERS__0__API_KEY", SECRET)
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "restapi")
    monkeypatch.setenv("TRACE_HANDLERS__1__API_URL", f"http://user:{SECRET}@127.0.0.1:{down}/x?k=v")
    monkeypatch.setenv("TRACE_HANDLERS__2__TYPE", "elasticsearch")
    monkeypatch.setenv("TRACE_HANDLERS__2__ES_HOSTS", f"http://127.0.0.1:{down}")
    monkeypatch.setenv("TRACE_HANDLERS__2__PASSWORD", SECRET2)
    code, out, err = cli(capsys, "check", "--timeout", "2")
    assert code == 1
    port = httpserver.port
    assert out.splitlines() == [
        f"ok   handlers[0] restapi (datadog) http://localhost:{port}/logs: reachable "
        "(HTTP 405; credentials not checked)",
        "1 of 3 sink(s) ok",
    ]
    fails = err.splitlines()
    assert len(fails) == 2  # one line per failing sink
    assert fails[0].startswith(
        f"FAIL handlers[1] restapi (generic) http://127.0.0.1:{down}/x: unreachable (ConnectError"
    )
    assert fails[1].startswith(
        f"FAIL handlers[2] elasticsearch http://127.0.0.1:{down}: unreachable (ConnectError"
    )
    assert SECRET not in out + err and SECRET2 not in out + err
    # Nothing secret went over the wire either.
    [(request, _)] = httpserver.log
    assert request.method == "HEAD"
    assert SECRET not in str(dict(request.headers))


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "workflow-traces"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TRACE_TYPE": "sqlite",
        "TRACE_WORKFLOW_NAME": "from-env",
    }
    done = subprocess.run(
        [str(script), "config", "show", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["key"]: row for row in json.loads(done.stdout)["values"]}
    assert rows["trace_type"]["variable"] == "TRACE_TYPE"
    assert rows["handlers[0].path"]["value"] == "./logs/workflow_traces.db"
    assert rows["workflow_name"]["source"] == "environment"
