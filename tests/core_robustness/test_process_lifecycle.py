"""Process lifecycle in real subprocesses: exit without close(), SIGKILL, fork.

The SIGKILL bound (the documented guarantee this test asserts): the worker writes whatever its
buffer holds at least every ``flush_interval`` seconds, and a write that returned is on disk for
the file sink (page cache) and committed for SQLite (WAL). So a SIGKILL loses at most the records
logged in the last ``flush_interval`` (plus the time one batch takes to write) before the kill:
records older than that are all present, and the loss is at most what the buffer held.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from robust_helpers import raw_file_ids, record_ids, run_script, start_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")

SETUP = """
import os, sys, time, json
from workflow_traces import get_trace
FLUSH = {flush}
trace = get_trace("{run_id}", extras={{
    "trace_type": "multi",
    "fail_silently": False,
    "handlers": [
        {{"type": "file", "path": "files", "flush_interval": FLUSH, "buffer_size": 1 << 30}},
        {{"type": "sqlite", "path": "traces.db", "flush_interval": FLUSH, "buffer_size": 100000}},
    ],
}})
"""


def _ids_everywhere(cwd: Path, run_id: str) -> list[dict[str, int]]:
    return [dict(record_ids(cwd / "files", run_id)), dict(record_ids(cwd / "traces.db", run_id))]


@pytest.mark.parametrize("how", ["return", "sys.exit", "exception"])
def test_exit_without_close_loses_nothing(tmp_path: Path, how: str) -> None:
    # Large buffers and a long interval: without the exit hook nothing would be written.
    ending = {
        "return": "",
        "sys.exit": "sys.exit(3)",
        "exception": "raise RuntimeError('the job crashed')",
    }[how]
    code = (
        SETUP.format(flush=60.0, run_id="exit")
        + f"""
ids = []
for i in range(5000):
    trace.info(f"record {{i}}")
print(json.dumps("done"), flush=True)
{ending}
"""
    )
    proc = run_script(code, tmp_path, check=False)
    assert proc.returncode == {"return": 0, "sys.exit": 3, "exception": 1}[how], proc.stderr
    for counts in _ids_everywhere(tmp_path, "exit"):
        assert len(counts) == 5000 and set(counts.values()) == {1}
    assert raw_file_ids(tmp_path / "files" / "run_id=exit").total() == 5000


def test_exit_with_a_logger_and_multihandler_loses_nothing(tmp_path: Path) -> None:
    code = """
import logging
from workflow_traces import MultiHandler, SQLiteHandler, WorkflowFileHandler
multi = MultiHandler("exit-logger", handlers=[
    WorkflowFileHandler("exit-logger", base_path="files", flush_interval=60, buffer_size=1 << 30),
    SQLiteHandler("exit-logger", db_path="traces.db", flush_interval=60, buffer_size=100000),
])
logging.basicConfig(level=logging.INFO, handlers=[multi])
for i in range(3000):
    logging.getLogger("job").info("line %d", i)
"""
    run_script(code, tmp_path)
    for counts in _ids_everywhere(tmp_path, "exit-logger"):
        assert len(counts) == 3000 and set(counts.values()) == {1}


def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    flush = 0.3
    n_old, m_new = 2000, 2000
    code = (
        SETUP.format(flush=flush, run_id="killed")
        + f"""
for i in range({n_old}):
    trace.info(f"old {{i}}")
time.sleep(2.5 * FLUSH)  # more than twice the flush interval
for i in range({m_new}):
    trace.info(f"new {{i}}")
print("logged", flush=True)
time.sleep(30)
"""
    )
    with start_script(code, tmp_path) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "logged", proc.stderr
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        from workflow_traces import open_store

        with open_store(location) as store:
            messages = [r.message for r in store.get_run("killed").records]
        old = [m for m in messages if m.startswith("old ")]
        new = [m for m in messages if m.startswith("new ")]
        # Everything older than the flush interval is there, exactly once ...
        assert old == [f"old {i}" for i in range(n_old)], location
        # ... and the loss is at most the records the buffer held at the kill.
        assert len(new) <= m_new
        # Batches are written in order, so what arrived of the new records is a prefix.
        assert new == [f"new {i}" for i in range(len(new))]


def test_sigkill_mid_write_leaves_readable_stores(tmp_path: Path) -> None:
    """A kill while batches are being written may cut the file's last line: the store skips it
    and reads the rest, and no record appears twice."""
    code = (
        SETUP.format(flush=0.01, run_id="cut")
        + """
for i in range(200):
    trace.info(f"flushed {i}")
trace.flush()
print("go", flush=True)
i = 0
while True:
    trace.info("x" * 5000 + str(i))
    i += 1
    if i % 100 == 0:
        time.sleep(0.001)
"""
    )
    with start_script(code, tmp_path) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "go"
        time.sleep(0.7)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        from workflow_traces import open_store

        with open_store(location) as store:
            records = store.get_run("cut").records
        texts = [r.message for r in records]
        assert texts[:200] == [f"flushed {i}" for i in range(200)], location
        ids = [r.record_id for r in records]
        assert len(ids) == len(set(ids))
    raw = raw_file_ids_tolerant(tmp_path / "files" / "run_id=cut")
    assert set(raw.values()) == {1}


def raw_file_ids_tolerant(folder: Path) -> Counter[str]:
    """raw_file_ids, with a last line cut short by the kill left out."""
    data = (folder / "traces.jsonl").read_bytes()
    if not data.endswith(b"\n"):
        (folder / "traces.jsonl").write_bytes(data[: data.rfind(b"\n") + 1])
    return raw_file_ids(folder)


def test_fork_parent_and_child_each_write_exactly_once(tmp_path: Path) -> None:
    code = (
        SETUP.format(flush=60.0, run_id="forked")
        + """
# Buffered before the fork: must be written once (by the parent), never again by the child.
for i in range(500):
    trace.info(f"pre {i}")
pid = os.fork()
who = "child" if pid == 0 else "parent"
for i in range(1000):
    trace.info(f"{who} {i}")
if pid == 0:
    trace.close()
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
trace.close()
print(json.dumps(os.getpid()))
"""
    )
    run_script(code, tmp_path)
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        from workflow_traces import open_store

        with open_store(location) as store:
            records = store.get_run("forked").records
        ids = [r.record_id for r in records]
        assert len(ids) == len(set(ids)) == 2500, location
        texts = sorted(r.message for r in records)
        expected = sorted(
            [f"pre {i}" for i in range(500)]
            + [f"{who} {i}" for who in ("parent", "child") for i in range(1000)]
        )
        assert texts == expected
        assert len({r.process for r in records}) == 2
    # The file store drops repeated ids when reading: check the raw lines too.
    raw = raw_file_ids(tmp_path / "files" / "run_id=forked")
    assert raw.total() == 2500 and set(raw.values()) == {1}


def test_forked_child_that_exits_normally_flushes(tmp_path: Path) -> None:
    """A forked child that returns through the interpreter's normal exit (no close) still
    writes its records, and does not write the parent's pre-fork buffer."""
    code = (
        SETUP.format(flush=60.0, run_id="fork-exit")
        + """
for i in range(100):
    trace.info(f"pre {i}")
pid = os.fork()
if pid == 0:
    for i in range(300):
        trace.info(f"child {i}")
    sys.exit(0)  # normal exit: atexit runs in the child
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
for i in range(300):
    trace.info(f"parent {i}")
"""
    )
    run_script(code, tmp_path)
    for counts in _ids_everywhere(tmp_path, "fork-exit"):
        assert len(counts) == 700 and set(counts.values()) == {1}


def test_stdout_is_not_polluted_by_the_exit_hook(tmp_path: Path) -> None:
    code = (
        SETUP.format(flush=60.0, run_id="quiet")
        + """
trace.info("one")
print(json.dumps({"ok": True}))
"""
    )
    proc = run_script(code, tmp_path)
    assert json.loads(proc.stdout) == {"ok": True}
    assert proc.stderr == ""


MP_SCRIPT = """
import multiprocessing as mp
import sys
from workflow_traces import get_trace

EXTRAS = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "files", "flush_interval": 60, "buffer_size": 1 << 30},
        {"type": "sqlite", "path": "traces.db", "flush_interval": 60, "buffer_size": 100000},
    ],
}


def inherited(n):
    # Uses the parent's trace (fork only): the child's own worker writes these.
    for i in range(n):
        TRACE.info(f"{mp.current_process().name} inherited {i}")


def own(n):
    # A trace made inside the child, never closed: the child's exit must write it.
    trace = get_trace("mp", extras=EXTRAS)
    for i in range(n):
        trace.info(f"{mp.current_process().name} own {i}")


if __name__ == "__main__":
    method = sys.argv[1]
    ctx = mp.get_context(method)
    TRACE = get_trace("mp", extras=EXTRAS)
    targets = [own, own] + ([inherited, inherited] if method == "fork" else [])
    procs = [ctx.Process(target=t, args=(250,), name=f"p{i}") for i, t in enumerate(targets)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, p.exitcode
    TRACE.info("parent done")
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_lose_nothing(tmp_path: Path, method: str) -> None:
    """multiprocessing's fork children end with os._exit() (no atexit hooks): their records
    are written all the same."""
    import subprocess

    (tmp_path / "main.py").write_text(MP_SCRIPT)
    proc = subprocess.run(
        [sys.executable, "main.py", method],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.returncode == 0, proc.stderr
    expected = 1 + 250 * (4 if method == "fork" else 2)
    for counts in _ids_everywhere(tmp_path, "mp"):
        assert len(counts) == expected and set(counts.values()) == {1}


def test_a_failed_sink_does_not_break_logging_shutdown_at_exit(tmp_path: Path) -> None:
    """With fail_silently=False and a sink failing, the exit still lets logging.shutdown flush
    every other handler (an exception there stops it), and the failure is reported."""
    code = """
import logging, logging.handlers, os
from workflow_traces import MultiHandler, SQLiteHandler, WorkflowFileHandler
plain = logging.FileHandler("plain.log")
memory = logging.handlers.MemoryHandler(capacity=10_000, target=plain)  # flushes on close
sqlite = SQLiteHandler("exit-fail", db_path="traces.db", fail_silently=False)
files = WorkflowFileHandler("exit-fail", base_path="files", fail_silently=False)
multi = MultiHandler("exit-fail", handlers=[files, sqlite], fail_silently=False)
logging.basicConfig(level=logging.INFO, handlers=[memory, multi, sqlite])
os.mkdir("traces.db")  # the database path is a folder now: every SQLite write fails
for i in range(100):
    logging.getLogger("job").info("line %d", i)
"""
    proc = run_script(code, tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    # The MemoryHandler was flushed at exit: it holds every line, and the failure report (our
    # diagnostics propagate to the root logger's handlers, ours excepted).
    lines = (tmp_path / "plain.log").read_text().splitlines()
    assert [line for line in lines if line.startswith("line ")] == [f"line {i}" for i in range(100)]
    assert any("sink sqlite:traces.db failed to write" in line for line in lines)
    counts = record_ids(tmp_path / "files", "exit-fail")
    assert len(counts) == 100
