"""``ship``: every record once per destination, from SQLite and folders, to local stores and a
REST receiver, through the sink's own delivery (retries, 413 splitting)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ship_helpers import ids_in, write_runs

import workflow_traces
from workflow_traces import open_store
from workflow_traces.cli.main import main
from workflow_traces.errors import ConfigError
from workflow_traces.shipping import ship
from workflow_traces.shipping.checkpoint import Checkpoint, default_path
from workflow_traces.shipping.shipper import _Pacer


def _generic(url: str, **keys: Any) -> dict[str, Any]:
    return {
        "type": "restapi",
        "service_type": "generic",
        "format": "ndjson",
        "api_url": url,
        **keys,
    }


@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("dest_kind", ["sqlite", "file"])
def test_ships_every_record_once_with_its_fields(tmp_path: Path, kind: str, dest_kind: str) -> None:
    src = tmp_path / ("src.db" if kind == "sqlite" else "src")
    write_runs(kind, src)
    dest = tmp_path / ("dest.db" if dest_kind == "sqlite" else "dest")
    first = ship(src, {"type": dest_kind, "path": str(dest)})
    assert [r.sent for r in first] == [3 * 202] and first[0].ok and first[0].runs == 3
    with open_store(src) as a, open_store(dest) as b:
        for run in ("run-0", "run-1", "run-2"):
            assert b.get_run(run).records == a.get_run(run).records  # every field, every id
            assert b.get_run(run).status == "succeeded"
    again = ship(src, {"type": dest_kind, "path": str(dest)})
    assert again[0].sent == 0 and again[0].ok
    assert sorted(ids_in(dest)) == sorted(ids_in(src))


def test_selects_runs_by_id_workflow_and_start(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src)
    by_run = tmp_path / "by_run.db"
    assert ship(src, {"type": "sqlite", "path": str(by_run)}, runs=["run-1"])[0].sent == 202
    by_wf = tmp_path / "by_wf.db"
    assert ship(src, {"type": "sqlite", "path": str(by_wf)}, workflow="wf0")[0].sent == 404
    later = tmp_path / "later.db"
    assert ship(src, {"type": "sqlite", "path": str(later)}, since="2999-01-01")[0].sent == 0
    recent = tmp_path / "recent.db"
    assert ship(src, {"type": "sqlite", "path": str(recent)}, since="1h")[0].sent == 606
    with open_store(by_run) as s:
        assert [r.run_id for r in s.list_runs()] == ["run-1"]
    with open_store(by_wf) as s:
        assert sorted(r.run_id for r in s.list_runs()) == ["run-0", "run-2"]
    # A selection shipped, then everything: only what was not yet delivered goes.
    assert ship(src, {"type": "sqlite", "path": str(by_run)})[0].sent == 404
    assert sorted(ids_in(by_run)) == sorted(ids_in(src))


def test_new_records_of_a_source_go_on_the_next_ship(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest.db"
    write_runs("file", src, runs=1)
    assert ship(src, {"type": "sqlite", "path": str(dest)})[0].sent == 202
    write_runs("file", src, runs=2)  # run-0 gets 202 more records, run-1 is new
    assert ship(src, {"type": "sqlite", "path": str(dest)})[0].sent == 404
    assert sorted(ids_in(dest)) == sorted(ids_in(src))


def test_rest_destination_through_retries_and_413_splitting(tmp_path: Path, receivers: Any) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=2, per_run=1500)
    receiver = receivers("generic", statuses=[503, 503], max_records=300)
    dest = _generic(receiver.url, buffer_size=1000, retry_base_delay=0.01)
    result = ship(src, dest, batch_size=2000)
    assert result[0].ok and result[0].sent == 3004
    assert Counter(receiver.record_ids()) == Counter(ids_in(src))  # each exactly once
    assert 413 in {r.status for r in receiver.requests}  # split in halves, none lost
    assert ship(src, dest)[0].sent == 0


def test_a_refusing_destination_stops_and_the_next_ship_resumes(
    tmp_path: Path, receivers: Any
) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=3, per_run=998)  # 3,000 records: three batches of 1,000
    receiver = receivers("generic")
    dest = _generic(receiver.url, buffer_size=1000)
    receiver.fail_every = (2, 400)  # the second request is refused for good
    broken = ship(src, dest, batch_size=1000)[0]
    assert broken.error is not None and "400" in broken.error and broken.sent == 1000
    receiver.fail_every = None
    resumed = ship(src, dest, batch_size=1000)[0]
    assert resumed.ok and resumed.sent == 2000
    assert Counter(receiver.record_ids()) == Counter(ids_in(src))


def test_destination_from_the_trace_settings_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACE_TRACE_TYPE", "sqlite")
    monkeypatch.setenv("TRACE_SQLITE_PATH", str(tmp_path / "settings.db"))
    assert main(["ship", str(src)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("shipped 202 records of 1 runs")  # one line
    assert sorted(ids_in(tmp_path / "settings.db")) == sorted(ids_in(src))
    to = json.dumps({"type": "file", "path": str(tmp_path / "copy")})
    assert main(["ship", str(src), "--to", to]) == 0
    assert sorted(ids_in(tmp_path / "copy")) == sorted(ids_in(src))


def test_bad_destinations_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=5)
    assert main(["ship", str(src), "--to", '{"type": "sqlite", "paht": "x.db"}']) == 2
    assert "paht" in capsys.readouterr().err
    assert main(["ship", str(src), "--to", "not json"]) == 2
    assert "--to: expected a handler config as JSON" in capsys.readouterr().err
    assert main(["ship", str(src), "--to", json.dumps({"type": "sqlite", "path": str(src)})]) == 2
    assert "is the source itself" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="rate: must be > 0"):
        ship(src, {"type": "sqlite", "path": str(tmp_path / "d.db")}, rate=0)


def test_one_ship_of_a_source_at_a_time(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=5)
    with Checkpoint(default_path(src), str(src)), pytest.raises(ConfigError, match="another"):
        ship(src, {"type": "sqlite", "path": str(tmp_path / "d.db")})


def test_services_that_dedupe_by_id_keep_one_copy(tmp_path: Path) -> None:
    """Without its checkpoint a ship sends everything again, with the same ids: SQLite's
    unique record_id index keeps one row of each."""
    src, dest = tmp_path / "src.db", tmp_path / "dest.db"
    write_runs("sqlite", src, runs=2)
    ship(src, {"type": "sqlite", "path": str(dest)})
    default_path(src).unlink()
    assert ship(src, {"type": "sqlite", "path": str(dest)})[0].sent == 404
    with sqlite3.connect(dest) as conn:
        assert conn.execute("SELECT COUNT(*) FROM traces").fetchone()[0] == 404


def test_rate_paces_by_the_clock() -> None:
    """The pacer's arithmetic, on a clock that does not move (no timed assertion): 1,000
    records at 200/s are held back five seconds in all."""
    slept: list[float] = []
    pacer = _Pacer(200, clock=lambda: 0.0, sleep=slept.append)
    for _ in range(100):
        pacer.wait(10)
    assert pacer.chunk() == 10 and slept[-1] == pytest.approx(5.0)


def test_rate_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=98)
    to = json.dumps({"type": "sqlite", "path": str(tmp_path / "d.db")})
    assert main(["ship", str(src), "--to", to, "--rate", "1000", "--batch", "30"]) == 0
    assert "shipped 100 records" in capsys.readouterr().out
    assert len(ids_in(tmp_path / "d.db")) == 100


def test_progress_bar_with_tqdm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=98)
    ship(src, {"type": "sqlite", "path": str(tmp_path / "d.db")}, progress=True)
    err = capsys.readouterr().err
    assert "100/100" in err and "rec/s" in err


def test_the_api_is_public_and_lazy(tmp_path: Path) -> None:
    import subprocess

    assert workflow_traces.ship is ship
    code = (
        "import sys, workflow_traces; "
        "print(any(m.startswith('workflow_traces.shipping') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_destination_from_a_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=1, per_run=8)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env.archive").write_text(
        "TRACE_TRACE_TYPE=sqlite\nTRACE_SQLITE_PATH=" + str(tmp_path / "archive.db") + "\n"
    )
    assert main(["ship", str(src), "--profile", "archive"]) == 0
    assert "to sqlite " + str(tmp_path / "archive.db") in capsys.readouterr().out
    assert sorted(ids_in(tmp_path / "archive.db")) == sorted(ids_in(src))


def test_an_unreachable_service_stops_the_ship_with_exit_3_and_it_resumes(
    tmp_path: Path, receivers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=2, per_run=98)
    receiver = receivers("generic")
    receiver.down()  # connection refused: retried, then the circuit breaker holds the records
    to = json.dumps(_generic(receiver.url, max_retries=1, retry_base_delay=0.01))
    assert main(["ship", str(src), "--to", to]) == 3
    assert "ship again to resume" in capsys.readouterr().err
    receiver.up()
    assert main(["ship", str(src), "--to", to]) == 0
    assert Counter(receiver.record_ids()) == Counter(ids_in(src))


def test_a_run_file_begun_again_is_read_from_its_start(tmp_path: Path) -> None:
    """A run folder removed (pruned, say) and written again is shorter than the position the
    checkpoint holds: it is read from its start."""
    import shutil

    from workflow_traces.exporters.file import run_dir

    src, dest = tmp_path / "src", tmp_path / "dest.db"
    write_runs("file", src, runs=1, per_run=50)
    assert ship(src, {"type": "sqlite", "path": str(dest)})[0].sent == 52
    shutil.rmtree(run_dir(src, "run-0"))
    write_runs("file", src, runs=1, per_run=3)
    assert ship(src, {"type": "sqlite", "path": str(dest)})[0].sent == 5
    assert len(ids_in(dest)) == 57
