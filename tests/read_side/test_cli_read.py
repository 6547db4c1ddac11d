"""The read commands as a user runs them: real processes over real runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from read_helpers import Places
from sample_runs import TERMINAL_ATTACK, live_run, plain_run, sinks

from workflow_traces import open_store
from workflow_traces.text import escape_terminal

EXE = [sys.executable, "-m", "workflow_traces.cli.main"]
#: The CLI with Python's own Ctrl-C handler whatever the disposition inherited: a shell starts a
#: background job (``make test &``) with SIGINT ignored, and every process under it inherits that.
EXE_CTRL_C = [
    sys.executable,
    "-c",
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from workflow_traces.cli.main import main; sys.exit(main(sys.argv[1:]))",
]


def cli(
    *args: str, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    full_env.update(env or {})
    return subprocess.run(
        [*EXE, *args], capture_output=True, text=True, timeout=60, env=full_env, **kw
    )


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    files, db = tmp_path / "files", tmp_path / "traces.db"
    plain_run(sinks(files, db), lines=12)
    return files, db


def test_show_with_filters_prints_only_matching_logs(run: tuple[Path, Path]) -> None:
    for location in run:
        with open_store(location) as store:
            for flags, query in (
                (["--level", "WARNING"], {"level": "WARNING"}),
                (["--job", "extract"], {"job": "extract"}),
                (["--stage", "parse"], {"stage": "parse"}),
                (["--grep", "row"], {"text": "row"}),
                (["--since", "10m"], {"since": "10m"}),
            ):
                expected = list(store.iter_records("etl-1", kind="log", **query))
                shown = cli("runs", "show", str(location), "etl-1", *flags, "--ndjson")
                assert shown.returncode == 0, shown.stderr
                ids = [json.loads(line)["record_id"] for line in shown.stdout.splitlines()]
                assert ids == [r.record_id for r in expected], flags
                text = cli("runs", "show", str(location), "etl-1", *flags)
                assert text.returncode == 0, text.stderr
                logs = text.stdout.split("\nlogs:\n", 1)[1]
                for rec in expected:
                    assert f"{rec.level}: " in logs
                assert logs.count(": ") >= len(expected)


def test_show_json_is_one_document_with_tree_offsets_and_statuses(run: tuple[Path, Path]) -> None:
    files, db = run
    shown = cli("runs", "show", str(db), "etl-1", "--json", "--logs")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["run"]["status"] == "succeeded" and doc["run"]["run_id"] == "etl-1"
    tree = doc["tree"]
    assert [c["name"] for c in tree["children"]] == ["extract", "transform", "load"]
    extract = tree["children"][0]
    assert [(s["name"], s["attempt"], s["status"]) for s in extract["children"]] == [
        ("fetch", 1, "failed"),
        ("fetch", 2, "succeeded"),
        ("parse", 1, "succeeded"),
    ]
    offsets = [c["offset"] for c in tree["children"]]
    assert offsets == sorted(offsets) and all(o >= 0 for o in offsets)
    clean = tree["children"][1]["children"][1]
    assert clean["children"][0]["kind"] == "run" and clean["children"][0]["status"] == "succeeded"
    with open_store(db) as store:
        assert [r["record_id"] for r in doc["logs"]] == [
            r.record_id for r in store.iter_records("etl-1", kind="log")
        ]
    listing = json.loads(cli("runs", "list", str(files), "--json").stdout)
    by_id = {r["run_id"]: r for r in listing["runs"]}
    assert by_id["etl-1"]["child_count"] == 1 and by_id["etl-1-child"]["parent_run_id"] == "etl-1"


def test_the_tree_and_list_show_offsets_children_and_no_colour_off_a_tty(
    run: tuple[Path, Path],
) -> None:
    _, db = run
    shown = cli("runs", "show", str(db), "etl-1")
    assert shown.returncode == 0, shown.stderr
    assert "│   ├── stage fetch (attempt 1)  failed" in shown.stdout
    assert "run enrich [etl-1-child]  succeeded" in shown.stdout
    assert "\x1b" not in shown.stdout and "\nlogs:" not in shown.stdout
    for line in shown.stdout.splitlines():
        if "job " in line:
            assert " +" in line  # start offset from the run's start
    listing = cli("runs", "list", str(db))
    lines = listing.stdout.splitlines()
    parent = next(i for i, line in enumerate(lines) if line.endswith("  etl-1"))
    assert lines[parent + 1].endswith("└─ etl-1-child")
    roots = cli("runs", "list", str(db), "--roots").stdout
    assert "etl-1-child" not in roots and "etl-1" in roots


def test_logged_text_cannot_drive_the_terminal(run: tuple[Path, Path]) -> None:
    for location in run:
        shown = cli("runs", "show", str(location), "etl-1", "--logs")
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        assert "\u202e" not in shown.stdout and "\r" not in shown.stdout
        assert "red \\x1b[31mALERT\\x1b[0m\\rover\\x07 bell \\u202eevil" in shown.stdout
        # --ndjson keeps the exact text (JSON-escaped).
        nd = cli("runs", "show", str(location), "etl-1", "--ndjson", "--grep", "ALERT")
        assert [json.loads(line)["message"] for line in nd.stdout.splitlines()] == [TERMINAL_ATTACK]


def test_status_is_checked_and_version_printed(run: tuple[Path, Path]) -> None:
    refused = cli("runs", "list", str(run[1]), "--status", "SUCCEEDED")
    assert refused.returncode == 2
    assert "invalid choice: 'SUCCEEDED'" in refused.stderr
    assert "'succeeded', 'failed', 'skipped', 'cancelled', 'unfinished'" in refused.stderr
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == "workflow-traces 0.1.0"


def test_no_location_reads_the_store_the_settings_name(run: tuple[Path, Path]) -> None:
    files, db = run
    for env in (
        {"TRACE_TRACE_TYPE": "sqlite", "TRACE_SQLITE_PATH": str(db)},
        {"TRACE_PATH": str(files)},
    ):
        listing = cli("runs", "list", env=env, cwd="/")
        assert listing.returncode == 0, listing.stderr
        assert "etl-1-child" in listing.stdout
        shown = cli("runs", "show", "etl-1", env=env, cwd="/")
        assert shown.returncode == 0 and "status:    succeeded" in shown.stdout
    # A location given wins over the settings.
    other = cli("runs", "list", str(db), env={"TRACE_PATH": "/nowhere"})
    assert other.returncode == 0 and "etl-1" in other.stdout


def test_output_piped_into_head_ends_quietly(run: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = run
    many = tmp_path / "many.db"
    plain_run(sinks(tmp_path / "f2", many), run_id="big", lines=20000)
    for args in (
        ["runs", "show", str(many), "big", "--logs"],
        ["runs", "show", str(many), "big", "--ndjson"],
        ["runs", "list", str(db)],
        ["config", "show"],
    ):
        with subprocess.Popen(
            [*EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as pipe:
            head = subprocess.run(["head", "-n", "1"], stdin=pipe.stdout, capture_output=True)
            assert pipe.stdout is not None
            pipe.stdout.close()
            _, err = pipe.communicate(timeout=60)
        assert head.stdout, args
        assert b"Traceback" not in err and b"BrokenPipe" not in err, (args, err)
        assert pipe.returncode == 0, (args, err)


def test_follow_prints_records_as_they_land_and_exits_0_at_the_end(places: Places) -> None:
    go, done = threading.Event(), threading.Event()
    writer = threading.Thread(target=live_run, args=(places.extras, "live-cli", go, done))
    writer.start()
    try:
        for location in (places.db, places.files):
            deadline = time.monotonic() + 10
            while not location.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        with subprocess.Popen(
            [*EXE, "runs", "tail", str(places.db), "live-cli", "-f"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as follower:
            assert follower.stdout is not None
            seen = []
            for line in follower.stdout:
                seen.append(line)
                if "INFO: tick " in line:
                    number = int(line.rsplit("tick ", 1)[1])
                    (go if number < 2 else done).set()  # the next once this one showed
            _, err = follower.communicate(timeout=30)
            assert follower.returncode == 0, err
    finally:
        done.set()
        writer.join(10)
    ticks = [line.rsplit(": ", 1)[1].strip() for line in seen if "INFO: tick" in line]
    assert ticks == ["tick 0", "tick 1", "tick 2"]
    assert "workflow live succeeded" in seen[-1]


def test_follow_ends_quietly_on_ctrl_c(places: Places) -> None:
    trace_extras = places.extras
    from workflow_traces.integrations.plain import workflow

    scope = workflow("never-ends", run_id="open-run", **trace_extras)
    trace = scope.__enter__()
    trace.info("started and waiting")
    trace.flush()
    try:
        with subprocess.Popen(
            [*EXE_CTRL_C, "runs", "show", str(places.db), "open-run", "--follow"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as follower:
            try:
                assert follower.stdout is not None
                first = follower.stdout.readline()
                assert "workflow never-ends started" in first
                assert "started and waiting" in follower.stdout.readline()
                follower.send_signal(signal.SIGINT)
                out, err = follower.communicate(timeout=30)
                assert follower.returncode == 130
                assert err == "" and "Traceback" not in out
            finally:
                if follower.poll() is None:  # a failed check: stop it, or the test never ends
                    follower.kill()
    finally:
        scope.__exit__(None, None, None)


def test_tail_prints_the_last_lines(run: tuple[Path, Path]) -> None:
    for location in run:
        with open_store(location) as store:
            last = store.last_records("etl-1", 3, kind="log", level="INFO")
        tail = cli("runs", "tail", str(location), "etl-1", "-n", "3", "--level", "INFO")
        assert tail.returncode == 0, tail.stderr
        lines = [line for line in tail.stdout.splitlines() if not line.startswith("    ")]
        assert [line.split(": ", 1)[1] for line in lines] == [
            escape_terminal(r.message) for r in last
        ]
        assert lines[-1].endswith("ERROR: load finished with errors")
