"""A ship killed half-way resumes (a real SIGKILL of a subprocess), and a corrupt source gives
one clear error per unreadable place while the readable records still go."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ship_helpers import ids_in, write_runs

from workflow_traces.cli.main import main
from workflow_traces.exporters.file import RECORDS_FILE, run_dir
from workflow_traces.shipping import ship

BATCH = 1000


def _ship_cli(*args: str) -> subprocess.Popen[str]:
    code = "import sys; from workflow_traces.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "ship", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_killed_ship_resumes_resending_at_most_one_batch(
    tmp_path: Path, receivers: Any, kind: str
) -> None:
    src = tmp_path / ("src.db" if kind == "sqlite" else "src")
    write_runs(kind, src, runs=4, per_run=7498)  # 30,000 records
    receiver = receivers("generic")  # keeps every copy: repeats are counted, not merged
    to = json.dumps(
        {"type": "restapi", "service_type": "generic", "format": "ndjson",
         "api_url": receiver.url, "buffer_size": 500}
    )  # fmt: skip
    args = [str(src), "--to", to, "--batch", str(BATCH), "--rate", "10000"]
    proc = _ship_cli(*args)
    try:
        started = receiver.wait_for(8000, timeout=60)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=10)
    assert started, err
    assert proc.returncode == -signal.SIGKILL
    first = len(receiver.record_ids())
    assert 8000 <= first < 30_000, "killed half-way"
    proc = _ship_cli(*args[:-2])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    got = Counter(receiver.record_ids())
    expected = ids_in(src)
    assert set(got) == set(expected) and len(expected) == 30_000  # nothing lost
    repeats = sum(got.values()) - len(expected)
    print(f"killed after {first} records; resent {repeats} (one batch is {BATCH})")
    assert repeats <= BATCH  # at most the batch in flight, with the same ids
    assert "shipped" in out
    proc = _ship_cli(*args[:-2])  # and a third ship sends nothing
    out, _ = proc.communicate(timeout=60)
    assert out.startswith("shipped 0 records") and sum(Counter(receiver.record_ids()).values()) == (
        len(expected) + repeats
    )


def test_corrupt_lines_are_named_and_the_rest_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    write_runs("file", src, runs=2, per_run=10)
    file = run_dir(src, "run-1") / RECORDS_FILE
    lines = file.read_bytes().splitlines(keepends=True)
    # line 5 cut short by a crash, then more lines written after it; line 8 not JSON at all
    lines[4] = lines[4][: len(lines[4]) // 2] + b"\n"
    lines[7] = b"garbage\n"
    file.write_bytes(b"".join(lines))
    dest = tmp_path / "dest.db"
    code = main(["ship", str(src), "--to", json.dumps({"type": "sqlite", "path": str(dest)})])
    err = capsys.readouterr().err
    assert code == 1  # some skipped
    assert f"{file}: line 5: not valid JSON" in err and f"{file}: line 8: not valid JSON" in err
    assert len(ids_in(dest)) == 2 * 12 - 2  # every readable record went
    # The unreadable lines are not read again: a second ship is clean.
    assert main(["ship", str(src), "--to", json.dumps({"type": "sqlite", "path": str(dest)})]) == 0


def test_a_last_line_cut_short_is_read_again_next_time(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_runs("file", src, runs=1, per_run=10)
    file = run_dir(src, "run-0") / RECORDS_FILE
    whole = file.read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[1]
    file.write_bytes(whole[: len(whole) - len(last) // 2 - 1])  # a write still under way
    dest = {"type": "sqlite", "path": str(tmp_path / "dest.db")}
    first = ship(src, dest)[0]
    assert first.sent == 11 and [p.why for p in first.problems] == ["cut short (no end of line)"]
    file.write_bytes(whole)  # the writer finished the line
    second = ship(src, dest)[0]
    assert second.sent == 1 and second.ok
    assert len(ids_in(tmp_path / "dest.db")) == 12


def test_a_database_of_another_program_names_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    code = main(["ship", str(other), "--to", '{"type": "sqlite", "path": "x.db"}'])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{other}: table traces: not found" in err and "its tables: users" in err
    assert not (tmp_path / "x.db").exists()


def test_unreadable_rows_are_named_by_table_and_row(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=10)
    with sqlite3.connect(src) as conn:
        conn.execute("UPDATE traces SET detail = '[1, 2' WHERE seq = 3")
    result = ship(src, {"type": "sqlite", "path": str(tmp_path / "d.db")})[0]
    assert result.sent == 11 and not result.ok
    assert [str(p).split(": unreadable")[0] for p in result.problems] == [
        f"{src}: table traces, row seq=3"
    ]


def test_not_a_database_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    assert main(["ship", str(junk), "--to", '{"type": "sqlite", "path": "x.db"}']) == 2
    assert "neither a SQLite database nor a folder" in capsys.readouterr().err


def test_a_damaged_database_page_is_named_and_what_came_before_goes(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=20_000)
    with sqlite3.connect(src) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = src.stat().st_size
    with open(src, "r+b") as fh:  # overwrite pages in the middle of the file
        fh.seek(size // 2)
        fh.write(b"\xa5" * 40_000)
    result = ship(src, {"type": "sqlite", "path": str(tmp_path / "d.db")}, batch_size=1000)[0]
    assert 0 < result.sent < 20_002 and not result.ok
    assert [str(p).split(": cannot be read")[0] for p in result.problems] == [
        f"{src}: table traces, rows after seq={result.sent}"
    ]
    assert len(ids_in(tmp_path / "d.db")) == result.sent
