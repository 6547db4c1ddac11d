"""Reading runs back: the SQLite and file stores answer the same for the same runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workflow_traces import ConfigError, RunNotFoundError, open_store, trace_scope


def _write_runs(multi: Any) -> None:
    # A parent that succeeded, with two children (one failed, one never ended)...
    parent = multi("parent", workflow_name="etl")
    parent.event("workflow", "started", name="etl")
    parent.info("parent working")
    child_ok = multi("child-failed", parent_run_id="parent", workflow_name="load")
    child_ok.event("workflow", "started", name="load")
    try:
        raise RuntimeError("load broke")
    except RuntimeError as exc:
        child_ok.exception("while loading")
        child_ok.event("workflow", "failed", name="load", duration=0.25, error=exc)
    child_open = multi("child-unfinished", parent_run_id="parent", workflow_name="load")
    child_open.event("workflow", "started", name="load")
    child_open.info("then the process died")
    parent.event("workflow", "succeeded", name="etl", duration=1.5)
    # ...a skipped run, and a run with plain log lines and no lifecycle events.
    skipped = multi("skipped-run", workflow_name="report")
    skipped.event("workflow", "skipped", name="report")
    plain = multi("no-events")
    with trace_scope(workflow_name="adhoc", job_name="j1", stage_name="s1"):
        plain.info("stamped by the scope")
    plain.warning("outside the scope")
    for trace in (parent, child_ok, child_open, skipped, plain):
        trace.close()


def test_sqlite_and_file_stores_give_the_same_answers(multi: Any, locations: Any) -> None:
    _write_runs(multi)
    files, db = (open_store(loc) for loc in locations)
    for query in (
        {},
        {"workflow": "load"},
        {"status": "failed"},
        {"status": "unfinished"},
        {"workflow": "etl", "status": "succeeded"},
        {"limit": 2},
    ):
        assert files.list_runs(**query) == db.list_runs(**query), query
    for run_id in ("parent", "child-failed", "child-unfinished", "skipped-run", "no-events"):
        assert files.get_run(run_id) == db.get_run(run_id), run_id


def test_run_summaries_follow_the_lifecycle_events(multi: Any, locations: Any) -> None:
    _write_runs(multi)
    store = open_store(locations[1])
    by_id = {s.run_id: s for s in store.list_runs()}
    assert set(by_id) == {"parent", "child-failed", "child-unfinished", "skipped-run", "no-events"}
    assert by_id["parent"].status == "succeeded" and by_id["parent"].duration == 1.5
    assert by_id["child-failed"].status == "failed"
    assert by_id["child-failed"].parent_run_id == "parent"
    assert by_id["child-unfinished"].status == "unfinished"
    assert by_id["child-unfinished"].ended is None and by_id["child-unfinished"].duration is None
    assert by_id["skipped-run"].status == "skipped"
    assert by_id["no-events"].status is None and by_id["no-events"].duration is None
    assert [s.run_id for s in store.list_runs(workflow="load")] == [
        "child-unfinished",
        "child-failed",
    ]
    assert len(store.list_runs(limit=3)) == 3

    parent = store.get_run("parent")
    assert [c.run_id for c in parent.child_runs] == ["child-failed", "child-unfinished"]
    assert [(e.scope, e.event) for e in parent.events] == [
        ("workflow", "started"),
        ("workflow", "succeeded"),
    ]
    assert [r.message for r in parent.logs] == ["parent working"]
    failed = store.get_run("child-failed")
    assert failed.events[-1].exc_type == "RuntimeError"
    assert failed.events[-1].exc_message == "load broke"
    plain = store.get_run("no-events")
    assert [(r.workflow_name, r.job_name, r.stage_name) for r in plain.records] == [
        ("adhoc", "j1", "s1"),
        (None, None, None),
    ]


def test_unknown_runs_and_locations_are_clear_errors(
    multi: Any, locations: Any, tmp_path: Path
) -> None:
    only = multi("only")
    only.info("x")
    only.close()
    for location in locations:
        with pytest.raises(RunNotFoundError, match="no records of run 'missing'"):
            open_store(location).get_run("missing")
    with pytest.raises(ConfigError, match="does not exist"):
        open_store(tmp_path / "nowhere")
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello")
    with pytest.raises(ConfigError, match="neither a SQLite database nor a folder"):
        open_store(not_a_db)
