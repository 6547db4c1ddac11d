"""A run_id can never place a file outside the file sink's folder.

Each run_id is logged through file + SQLite sinks whose folder sits inside an otherwise empty
sandbox; afterwards the whole tmp tree is walked: nothing exists outside the sandbox's log folder
(and the database), and the run reads back by its original run_id from both stores.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from robust_helpers import files_outside, record_ids

from workflow_traces import (
    ConfigError,
    MultiHandler,
    UnsafeRunIdError,
    WorkflowFileHandler,
    get_trace,
    open_store,
)
from workflow_traces.testing import capture_traces

HOSTILE = [
    "a/b",
    "..",
    ".",
    "../../etc",
    "../escape",
    "x/../../y",
    "/etc/passwd",
    "/",
    "a\x00b",
    "\x00",
    "a\\b",
    "..\\..\\win",
    "C:\\temp\\x",
    "~",
    "~/home",
    "$HOME",
    "run id with spaces",
    "new\nline",
    "tab\there",
    "%2e%2e%2f",
    "%00",
    "run_id=inner",
    "ünïcödé/运行/🚀",
    "\uff21\uff22\uff0f\uff3c",  # full-width A, B, solidus and reverse solidus
    "-rf",
    "a" * 150,
    "é" * 30,  # 60 UTF-8 bytes, 180 characters once percent-encoded
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    box = tmp_path / "deep" / "sandbox"
    box.mkdir(parents=True)
    return box


def _trace(sandbox: Path, run_id: str) -> object:
    return get_trace(
        run_id,
        extras={
            "trace_type": "multi",
            "fail_silently": False,
            "handlers": [
                {"type": "file", "path": str(sandbox / "logs")},
                {"type": "sqlite", "path": str(sandbox / "db" / "t.db")},
            ],
        },
    )


@pytest.mark.parametrize("run_id", HOSTILE, ids=[repr(r)[:30] for r in HOSTILE])
def test_hostile_run_ids_stay_inside(tmp_path: Path, sandbox: Path, run_id: str) -> None:
    trace = _trace(sandbox, run_id)
    trace.info("contained")  # type: ignore[attr-defined]
    trace.close()  # type: ignore[attr-defined]

    outside = [
        p
        for p in files_outside(tmp_path, sandbox / "logs")
        if sandbox / "db" not in [p, *p.parents]
    ]
    # Only the folders that lead to the sandbox may exist outside it.
    assert {p.relative_to(tmp_path.resolve()) for p in outside} == {
        Path("deep"),
        Path("deep/sandbox"),
    }
    # One folder per run, directly inside the log folder, named "run_id=...".
    (entry,) = os.listdir(sandbox / "logs")
    assert entry.startswith("run_id=") and "/" not in entry and len(entry) <= 255
    assert sorted(os.listdir(sandbox / "logs" / entry)) == [
        "stderr.txt",
        "stdout.txt",
        "traces.jsonl",
    ]
    for location in (sandbox / "logs", sandbox / "db" / "t.db"):
        assert list(record_ids(location, run_id).values()) == [1]
        with open_store(location) as store:
            assert [s.run_id for s in store.list_runs()] == [run_id]


@pytest.mark.parametrize(
    "run_id", ["\ud800", "x\udfffy", ""], ids=["surrogate", "inner-surrogate", "empty"]
)
def test_unusable_run_ids_are_refused_with_a_clear_error(sandbox: Path, run_id: str) -> None:
    # (An over-long id is usable: it gets a shortened folder name, see
    # tests/core/test_run_id_and_event_edges.py. An empty one given to get_trace means "make a
    # new id"; given to a file handler, it is refused.)
    with pytest.raises(UnsafeRunIdError, match=r"^run_id: "):
        WorkflowFileHandler(run_id, base_path=sandbox / "logs")
    if run_id:
        with pytest.raises(ConfigError, match=r"run_id: "):
            _trace(sandbox, run_id)
    # Nothing was created for the refused run.
    assert not (sandbox / "logs").exists() or os.listdir(sandbox / "logs") == []


def test_failing_silently_leaves_the_file_sink_out_for_an_unusable_run_id(
    sandbox: Path,
) -> None:
    run_id = "z\ud800"  # a lone surrogate: no file name can hold it
    with capture_traces() as captured:  # an in-memory sink, which takes any text
        trace = get_trace(
            run_id,
            extras={
                "trace_type": "multi",
                "handlers": [{"type": "file", "path": str(sandbox / "logs")}],
            },
        )
        # The file sink is left out; with no sink left, its place holder reports it (issue 11).
        assert trace.handler_types == ["UnavailableHandler"]
        assert [h.state for h in trace.health().values()] == ["unavailable"]
        trace.info("kept in memory")
        trace.close()
    assert [(r.run_id, r.message) for r in captured] == [(run_id, "kept in memory")]
    assert not (sandbox / "logs").exists() or os.listdir(sandbox / "logs") == []


def test_records_carrying_another_run_id_stay_inside(tmp_path: Path, sandbox: Path) -> None:
    """A record's own run_id (from a stdlib ``extra=`` or a scope) also names a folder."""
    import logging

    from workflow_traces import trace_scope

    handler = WorkflowFileHandler("outer", base_path=sandbox / "logs")
    multi = MultiHandler("outer", handlers=[handler])
    logger = logging.getLogger("containment")
    logger.propagate = False
    logger.addHandler(multi)
    logger.setLevel(logging.INFO)
    try:
        logger.info("via extra", extra={"run_id": "../../../extra-escape"})
        with trace_scope(run_id="/tmp/scope-escape"):
            logger.info("via scope")
    finally:
        logger.removeHandler(multi)
        multi.close()
    assert files_outside(tmp_path, sandbox) == [
        (tmp_path / "deep").resolve(),
    ]
    for run_id in ("../../../extra-escape", "/tmp/scope-escape"):
        assert list(record_ids(sandbox / "logs", run_id).values()) == [1]
    assert not Path("/tmp/scope-escape").exists()


def test_get_run_with_a_hostile_id_never_reads_outside(sandbox: Path, tmp_path: Path) -> None:
    secret = tmp_path / "deep" / "traces.jsonl"
    secret.write_text('{"record_id": "stolen"}\n')
    handler = WorkflowFileHandler("ok", base_path=sandbox / "logs")
    handler.close()
    with open_store(sandbox / "logs") as store:
        for run_id in ("..", "../..", "../../traces.jsonl", "/", "."):
            with pytest.raises(KeyError):
                store.get_run(run_id)
