"""Many writers at once: threads, asyncio tasks and processes. Every record arrives exactly once
in every sink, counted by record_id: in the raw JSON lines of the file sink (the store drops
repeated ids when it reads, so it could hide a duplicate) and in the SQLite table, read with
plain SQL for the big runs (reading 160,000 records back through open_store takes seconds) and
through open_store for the others."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import orjson
from robust_helpers import (
    multi_extras,
    raw_file_ids,
    record_ids,
    run_script,
    sink_locations,
    sqlite_ids,
)

from workflow_traces import get_trace, trace_scope


def _assert_exactly_once(base: Path, run_id: str, expected: int, *, store: bool = True) -> None:
    raw = raw_file_ids(base / "files" / f"run_id={run_id}")
    assert raw.total() == expected and set(raw.values()) == {1}
    db = sqlite_ids(base / "traces.db", run_id)
    assert db.total() == expected and set(db.values()) == {1}
    assert set(db) == set(raw)
    if store:
        for location in sink_locations(base):
            counts = record_ids(location, run_id)
            assert len(counts) == expected, location
            assert set(counts.values()) == {1}, location


def test_sixteen_threads_times_ten_thousand(tmp_path: Path) -> None:
    trace = get_trace("threads", extras=multi_extras(tmp_path, fail_silently=False))
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            with trace_scope(job_name=f"job-{n}"):
                for i in range(10_000):
                    trace.info(f"t{n} {i}")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trace.close()
    assert errors == []
    _assert_exactly_once(tmp_path, "threads", 160_000, store=False)
    # Each thread's records carry its own scope, and arrive in that thread's order.
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        rows = conn.execute(
            "SELECT job_name, message FROM trace_records WHERE run_id = 'threads' ORDER BY seq"
        ).fetchall()
    conn.close()
    by_job: dict[str, list[str]] = {}
    for job, message in rows:
        by_job.setdefault(job or "", []).append(message)
    assert sorted(by_job) == sorted(f"job-{n}" for n in range(16))
    for job, texts in by_job.items():
        n = job.split("-")[1]
        assert texts == [f"t{n} {i}" for i in range(10_000)]
    health = trace.health()
    assert {h.written for h in health.values()} == {160_000}
    assert {(h.dropped, h.failed) for h in health.values()} == {(0, 0)}


def test_a_thousand_asyncio_tasks(tmp_path: Path) -> None:
    trace = get_trace("tasks", extras=multi_extras(tmp_path, fail_silently=False))

    async def task(n: int) -> None:
        with trace_scope(stage_name=f"stage-{n}"):
            for i in range(10):
                await trace.ainfo(f"task {n} {i}")
                if i % 3 == 0:
                    await asyncio.sleep(0)
                trace.debug(f"sync {n} {i}")

    async def main() -> None:
        await asyncio.gather(*(task(n) for n in range(1000)))
        await trace.aclose()

    asyncio.run(main())
    _assert_exactly_once(tmp_path, "tasks", 20_000)
    with __import__("workflow_traces").open_store(tmp_path / "files") as store:
        records = store.get_run("tasks").records
    # Every task saw its own scope, even though they interleaved.
    for r in records:
        assert r.stage_name == f"stage-{r.message.split()[1]}"


WRITER = """
import sys
from workflow_traces import get_trace
n, run_id = int(sys.argv[1]), sys.argv[2]
trace = get_trace(run_id, extras={{
    "trace_type": "multi",
    "fail_silently": False,
    "handlers": [
        {{"type": "file", "path": "files", "buffer_size": {buffer}}},
        {{"type": "sqlite", "path": "traces.db", "buffer_size": 100}},
    ],
}})
big = "y" * {size}
for i in range({count}):
    trace.info(f"proc {{n}} {{i}} " + big)
trace.close()
"""


COUNT = 1000


def _run_processes(tmp_path: Path, run_id: str, *, size: int, buffer: int, count: int) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(size=size, buffer=buffer, count=count))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(n), run_id],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def test_four_processes_share_one_database_and_one_run_folder(tmp_path: Path) -> None:
    # Lines of ~8 KB (above PIPE_BUF, so one write() is no atomic append) from four processes
    # go to the same run folder, and rows to the same SQLite database, all at once.
    (tmp_path / "files").mkdir()
    run_script("from workflow_traces import get_trace", tmp_path)  # warm the import cache
    _run_processes(tmp_path, "shared", size=8_000, buffer=200_000, count=COUNT)
    _assert_exactly_once(tmp_path, "shared", 4 * COUNT)
    # Every line of every file of the run folder is whole: JSON lines parse, text lines start
    # with a timestamp.
    run_dir = tmp_path / "files" / "run_id=shared"
    lines = (run_dir / "traces.jsonl").read_bytes().splitlines()
    for line in lines:
        orjson.loads(line)
    for line in (run_dir / "stdout.txt").read_text().splitlines():
        assert line.startswith("20"), line[:80]
    for location in sink_locations(tmp_path):
        with __import__("workflow_traces").open_store(location) as store:
            records = store.get_run("shared").records
        per_process: dict[int, list[int]] = {}
        for r in records:
            _, n, i = r.message.split(" ", 3)[:3]
            per_process.setdefault(int(n), []).append(int(i))
        assert {n: sorted(v) for n, v in per_process.items()} == {
            n: list(range(COUNT)) for n in range(4)
        }
