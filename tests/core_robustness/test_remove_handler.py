"""``remove_handler(h)`` returns once what ``h`` had queued is written, and leaves ``h`` open,
as the stdlib's ``Logger.removeHandler`` does: ``h`` may serve elsewhere. Real SQLite and a
real file; records counted by id."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from workflow_traces import MultiHandler, SQLiteHandler, Trace, open_store


def test_remove_handler_writes_what_it_queued_and_leaves_it_open(tmp_path: Path) -> None:
    # A long flush interval: only remove_handler's own flush can write the records in time.
    kept = SQLiteHandler("rm-1", db_path=tmp_path / "kept.db", flush_interval=60)
    removed = SQLiteHandler("rm-1", db_path=tmp_path / "removed.db", flush_interval=60)
    multi = MultiHandler("rm-1", handlers=[kept, removed])
    trace = Trace("rm-1", handler=multi)
    for i in range(25):
        trace.info(f"before {i}")
    trace.remove_handler(removed)
    # Written when remove_handler returns: read back without closing or flushing it.
    records = open_store(tmp_path / "removed.db").get_run("rm-1").records
    assert sorted(r.message for r in records) == sorted(f"before {i}" for i in range(25))
    assert len({r.record_id for r in records}) == 25
    assert removed.health().written == 25
    # Still open: it serves a logger of its own, and the trace goes on without it.
    assert not removed.channel.closed
    own = logging.getLogger("tests.remove_handler.own")
    own.propagate = False
    own.addHandler(removed)
    try:
        own.warning("still open")
    finally:
        own.removeHandler(removed)
    trace.info("after")
    trace.close()
    removed.close()
    messages = [r.message for r in open_store(tmp_path / "removed.db").get_run("rm-1").records]
    assert "still open" in messages and "after" not in messages
    kept_messages = [r.message for r in open_store(tmp_path / "kept.db").get_run("rm-1").records]
    assert len(kept_messages) == 26 and kept_messages[-1] == "after"


class _Watched(logging.StreamHandler):  # type: ignore[type-arg]
    """A real StreamHandler that also remembers being closed."""

    def __init__(self, stream: io.StringIO, closed: list[bool]) -> None:
        super().__init__(stream)
        self.closed_calls = closed

    def close(self) -> None:
        self.closed_calls.append(True)
        super().close()


def test_remove_handler_leaves_a_stdlib_handler_open(tmp_path: Path) -> None:
    stream = io.StringIO()
    closed: list[bool] = []
    plain = _Watched(stream, closed)
    plain.setFormatter(logging.Formatter("%(message)s"))
    multi = MultiHandler("rm-2", handlers=[plain])
    trace = Trace("rm-2", handler=multi)
    for i in range(5):
        trace.info(f"line {i}")
    trace.remove_handler(plain)
    assert stream.getvalue().splitlines() == [f"line {i}" for i in range(5)]
    assert closed == []  # remove_handler did not close it
    trace.close()
    assert closed == []  # nor did closing the trace it had left
