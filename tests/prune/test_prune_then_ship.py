"""Prune, then ship again: SQLite gives the numbers (``seq``) of pruned newest rows to the next
rows written, and a ship resuming from its checkpoint must still send every new record.

Real SQLite files written by the SQLite exporter, a real LocalReceiver on 127.0.0.1, the real
ship checkpoint beside the source."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from local_services.receiver import LocalReceiver
from prune_helpers import run_records, write

from workflow_traces import open_store
from workflow_traces.pruning import prune
from workflow_traces.shipping import ship

DAY_S = 86_400


def _ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT record_id FROM traces ORDER BY seq")]


def _max_seq(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT MAX(seq) FROM traces").fetchone()[0] or 0)


def _generic(url: str) -> dict[str, Any]:
    return {"type": "restapi", "service_type": "generic", "format": "ndjson", "api_url": url}


@pytest.mark.parametrize("select", [False, True], ids=["every-run", "by-workflow"])
def test_new_runs_after_pruning_every_run_all_reach_the_destinations(
    tmp_path: Path, select: bool
) -> None:
    src, copy = tmp_path / "src.db", tmp_path / "copy.db"
    write("sqlite", src, [r for i in range(3) for r in run_records(f"old-{i}", 1 + i, logs=300)])
    first = _ids(src)
    receiver = LocalReceiver("generic")
    try:
        rest = _generic(receiver.url)
        kw: dict[str, Any] = {"workflow": "wf"} if select else {}
        assert ship(src, {"type": "sqlite", "path": str(copy)}, batch_size=100, **kw)[0].sent == 906
        assert ship(src, rest, batch_size=100, **kw)[0].sent == 906
        # Every run ended before the cutoff: the whole table goes, numbers and all.
        removed = prune(src, "1d", now=time.time() + 10 * DAY_S)
        assert removed.records == 906 and _max_seq(src) == 0
        write("sqlite", src, [r for i in range(2) for r in run_records(f"new-{i}", 0, logs=200)])
        new = _ids(src)
        assert _max_seq(src) <= 906  # the pruned rows' numbers were given to the new rows
        assert ship(src, {"type": "sqlite", "path": str(copy)}, **kw)[0].sent == len(new) == 404
        assert ship(src, rest, **kw)[0].sent == 404
        # Counted by id: every record of both generations once, none lost, none repeated.
        assert Counter(_ids(copy)) == Counter(first + new)
        assert Counter(receiver.record_ids()) == Counter(first + new)
        # And a third ship sends nothing: the checkpoint holds again.
        assert ship(src, rest, **kw)[0].sent == 0
    finally:
        receiver.stop()


def test_pruning_the_newest_run_resends_at_most_a_batch_of_kept_rows_once(tmp_path: Path) -> None:
    """A recent run is kept, the newest rows (a run that ended long ago, written last) go:
    the ship resumes from the last batch mark that still holds inside the kept run, so the
    kept rows after it are sent once more, with their ids."""
    src = tmp_path / "src.db"
    kept = run_records("recent", 1, logs=298)
    write("sqlite", src, kept + run_records("ancient", 40, logs=498))
    first = _ids(src)
    receiver = LocalReceiver("generic")
    try:
        rest = _generic(receiver.url)
        assert ship(src, rest, batch_size=64)[0].sent == 800
        assert prune(src, "30d").records == 500
        assert _max_seq(src) == 300
        write("sqlite", src, run_records("newer", 0, logs=98))
        new = _ids(src)[300:]
        assert len(new) == 100 and _max_seq(src) == 400
        again = ship(src, rest, batch_size=64)[0]
        got = Counter(receiver.record_ids())
        assert all(got[i] == 1 for i in new)  # every new record, once
        assert all(got[i] == 1 for i in first[300:])  # the pruned run: not touched
        resent = [i for i in first[:300] if got[i] == 2]
        assert all(got[i] in (1, 2) for i in first[:300])
        # Kept rows after the last mark that still holds (seq 256): 44, sent once more.
        assert len(resent) == 44 and resent == first[256:300]
        assert again.sent == 100 + 44
        assert ship(src, rest)[0].sent == 0
        with open_store(src) as store:
            assert sorted(s.run_id for s in store.list_runs()) == ["newer", "recent"]
    finally:
        receiver.stop()


def test_a_run_shipped_alone_pruned_and_logged_again_under_its_id(tmp_path: Path) -> None:
    """A run's own position is checked too: the same run id, logged again after its rows were
    pruned, gets the pruned rows' numbers, and ``ship --run`` still sends its new records."""
    src, copy = tmp_path / "src.db", tmp_path / "copy.db"
    write("sqlite", src, run_records("again", 5, logs=48))
    dest = {"type": "sqlite", "path": str(copy)}
    assert ship(src, dest, runs=["again"], batch_size=10)[0].sent == 50
    assert prune(src, "1d").records == 50
    write("sqlite", src, run_records("again", 0, status="unfinished", logs=19))
    assert _max_seq(src) == 20
    assert ship(src, dest, runs=["again"])[0].sent == 20
    assert ship(src, dest, runs=["again"])[0].sent == 0
    with open_store(copy) as store:
        assert len(store.get_run("again").records) == 70
