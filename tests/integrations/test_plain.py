"""The plain-Python adapter: scopes, stamps, events, the decorator, nesting and propagation.

Everything runs against real file and SQLite sinks and is read back through both stores.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import shape
from workflow_traces.integrations.plain import (
    ScopedTrace,
    Skipped,
    job,
    stage,
    traced,
    workflow,
)

from workflow_traces import Record, Run, current_scope, get_trace, open_store
from workflow_traces.core.record import PARENT_SPAN_KEY

ReadRuns = Callable[[str], tuple[Run, Run]]


def _own_extras(rec: Record) -> dict[str, Any]:
    """A record's extras without the parent span id events carry there."""
    return {k: v for k, v in (rec.extras or {}).items() if k != PARENT_SPAN_KEY}


def names(run: Run, message: str) -> tuple[str | None, ...]:
    (rec,) = [r for r in run.logs if r.message == message]
    return (rec.run_id, rec.parent_run_id, rec.workflow_name, rec.job_name, rec.stage_name)


def events(run: Run) -> list[tuple[str | None, str | None, str | None]]:
    out = []
    for r in run.events:
        name = {"workflow": r.workflow_name, "job": r.job_name, "stage": r.stage_name}[r.scope]  # type: ignore[index]
        out.append((r.scope, name, r.event))
    return out


def test_scopes_stamp_every_record_and_emit_events(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    with workflow("etl", run_id="run-1", **sinks) as wf:
        assert isinstance(wf, ScopedTrace)
        wf.info("in workflow")
        with job("extract") as jb:
            jb.info("in job")
            with stage("fetch") as st:
                st.info("in stage")
                get_trace().warning("via get_trace")
                wf.info("workflow trace used inside the stage")
    for run in read_runs("run-1"):
        assert names(run, "in workflow") == ("run-1", None, "etl", None, None)
        assert names(run, "in job") == ("run-1", None, "etl", "extract", None)
        assert names(run, "in stage") == ("run-1", None, "etl", "extract", "fetch")
        assert names(run, "via get_trace") == ("run-1", None, "etl", "extract", "fetch")
        # The active scope decides the names, whichever trace object logs.
        assert names(run, "workflow trace used inside the stage")[4] == "fetch"
        assert events(run) == [
            ("workflow", "etl", "started"),
            ("job", "extract", "started"),
            ("stage", "fetch", "started"),
            ("stage", "fetch", "succeeded"),
            ("job", "extract", "succeeded"),
            ("workflow", "etl", "succeeded"),
        ]
        assert all(e.duration is not None and e.duration >= 0 for e in run.events[3:])
        assert run.status == "succeeded"


def test_tree_is_the_same_from_sqlite_and_files(sinks: dict[str, Any], read_runs: ReadRuns) -> None:
    with workflow("etl", run_id="run-tree", **sinks) as wf:
        wf.info("start")
        with job("extract"):
            with stage("fetch") as st:
                st.info("fetching")
            with stage("parse") as st:
                st.info("parsing")
        with job("load"):
            with pytest.raises(ValueError), stage("write"):
                raise ValueError("disk full")
            with stage("write") as st:
                st.info("second try")
    db, files = read_runs("run-tree")
    tree = db.tree
    assert shape(tree) == shape(files.tree)
    assert shape(tree) == [
        (0, "workflow", "etl", "succeeded", 1),
        (1, "job", "extract", "succeeded", 1),
        (2, "stage", "fetch", "succeeded", 1),
        (2, "stage", "parse", "succeeded", 1),
        (1, "job", "load", "succeeded", 1),
        (2, "stage", "write", "failed", 1),
        (2, "stage", "write", "succeeded", 2),
    ]
    assert [r.message for r in tree.records] == ["start"]
    assert [r.message for r in tree.find("fetch").records] == ["fetching"]  # type: ignore[union-attr]
    first, second = tree.find_all("write", "stage")
    assert first.error == "ValueError: disk full"
    assert [r.message for r in second.records] == ["second try"]
    assert tree.started is not None and tree.ended is not None and tree.duration is not None
    for node in tree.walk():
        assert node.duration is not None and node.duration >= 0
        assert node.started is not None and node.ended is not None
        assert node.started <= node.ended
    # Both stores return the same nodes, log lines and all.
    assert db.tree == files.tree


def test_failure_marks_every_scope_it_leaves_and_propagates(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    with (
        pytest.raises(KeyError, match="missing"),
        workflow("etl", run_id="run-fail", **sinks),
        job("extract"),
        stage("fetch"),
    ):
        raise KeyError("missing")
    for run in read_runs("run-fail"):
        assert run.status == "failed"
        tree = run.tree
        assert [(n.name, n.status) for n in tree.walk()] == [
            ("etl", "failed"),
            ("extract", "failed"),
            ("fetch", "failed"),
        ]
        failed = [e for e in run.events if e.event == "failed"]
        assert len(failed) == 3
        assert all(e.exc_type == "KeyError" and e.level == "ERROR" for e in failed)
        assert "raise KeyError" in (failed[0].exc_traceback or "")


def test_skipped_and_cancelled(sinks: dict[str, Any], read_runs: ReadRuns) -> None:
    with workflow("etl", run_id="run-skip", **sinks), job("extract"):
        with stage("optional"):
            raise Skipped("nothing new today")
        with pytest.raises(KeyboardInterrupt), stage("interrupted"):
            raise KeyboardInterrupt
    db, _ = read_runs("run-skip")
    tree = db.tree
    optional = tree.find("optional")
    interrupted = tree.find("interrupted")
    assert optional is not None and optional.status == "skipped"
    assert optional.error == "Skipped: nothing new today"
    assert interrupted is not None and interrupted.status == "cancelled"
    assert tree.status == "succeeded"


def test_stage_outside_any_scope_runs_in_a_workflow_of_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with stage("lonely") as st:
        st.info("alone")
        run_id = st.run_id
    assert current_scope().run_id is None
    # No sink settings: get_trace's defaults (the file sink under ./logs).
    with open_store(tmp_path / "logs") as store:
        tree = store.get_run(run_id).tree
    assert shape(tree) == [
        (0, "workflow", "lonely", "succeeded", 1),
        (1, "stage", "lonely", "succeeded", 1),
    ]
    assert [r.message for r in tree.children[0].records] == ["alone"]


def test_nested_workflows_get_parent_run_id_and_share_sinks(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    with workflow("parent", run_id="p-1", **sinks) as outer, job("fan-out"), stage("call-child"):
        with workflow("child", run_id="c-1", team="data") as inner:
            assert inner.handler is outer.handler  # no new sinks
            inner.info("in child")
            with job("work") as jb:
                jb.info("child job")
        outer.info("back in parent")
    parent_db, parent_files = read_runs("p-1")
    child_db, child_files = read_runs("c-1")
    assert [c.run_id for c in parent_db.child_runs] == ["c-1"]
    assert [c.run_id for c in parent_files.child_runs] == ["c-1"]
    for child in (child_db, child_files):
        # The child's own names: not the parent's job and stage.
        assert names(child, "in child") == ("c-1", "p-1", "child", None, None)
        assert names(child, "child job") == ("c-1", "p-1", "child", "work", None)
        # (An event's extras also hold its parent span id: see Record.parent_span_id.)
        assert all(_own_extras(r) == {"team": "data"} for r in child.records)
        assert child.status == "succeeded"
    assert names(parent_db, "back in parent") == ("p-1", None, "parent", "fan-out", "call-child")
    assert all(not _own_extras(r) for r in parent_db.records)


def test_nested_workflow_with_its_own_sinks(tmp_path: Path, sinks: dict[str, Any]) -> None:
    own = tmp_path / "child.db"
    with workflow("parent", run_id="p-2", **sinks) as outer:
        with workflow("child", run_id="c-2", trace_type="sqlite", path=str(own)) as inner:
            assert inner.handler is not outer.handler
            inner.info("child record")
        outer.info("parent still logging")  # the child closed only its own sinks
    with open_store(own) as store:
        child = store.get_run("c-2")
    assert child.parent_run_id == "p-2"
    assert [r.message for r in child.logs] == ["child record"]
    with open_store(tmp_path / "traces.db") as store:
        assert "parent still logging" in [r.message for r in store.get_run("p-2").logs]


def test_get_trace_inside_a_scope_returns_the_shared_trace_and_close_only_flushes(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    with workflow("etl", run_id="run-gt", **sinks) as wf, job("j"), stage("s"):
        inner = get_trace()
        assert isinstance(inner, ScopedTrace)
        assert inner.handler is wf.handler
        assert get_trace(run_id="run-gt") is inner
        with get_trace() as t:  # the spec's pattern: close() at the end
            t.info("first")
        get_trace().info("after the user's close")
        assert not wf.handler.closed
    assert wf.handler.closed  # the workflow closed its sinks when it ended
    db, _ = read_runs("run-gt")
    assert [r.message for r in db.logs] == ["first", "after the user's close"]


def test_traced_decorator_sync_and_async(sinks: dict[str, Any], read_runs: ReadRuns) -> None:
    @traced
    def extract(n: int) -> int:
        get_trace().info(f"extract {n}")
        return n * 2

    @traced(stage="load")
    async def load_rows(rows: int) -> int:
        await get_trace().ainfo(f"load {rows}")
        await asyncio.sleep(0)
        return rows + 1

    @traced(stage="boom")
    def boom() -> None:
        raise RuntimeError("bad row")

    assert extract.__name__ == "extract"
    with workflow("etl", run_id="run-dec", **sinks), job("main"):
        assert extract(2) == 4
        assert asyncio.run(load_rows(3)) == 4
        with pytest.raises(RuntimeError):
            boom()
    db, files = read_runs("run-dec")
    assert (
        shape(db.tree)
        == shape(files.tree)
        == [
            (0, "workflow", "etl", "succeeded", 1),
            (1, "job", "main", "succeeded", 1),
            (2, "stage", "extract", "succeeded", 1),
            (2, "stage", "load", "succeeded", 1),
            (2, "stage", "boom", "failed", 1),
        ]
    )
    assert names(db, "load 3") == ("run-dec", None, "etl", "main", "load")


def test_traced_outside_any_scope_opens_a_workflow(tmp_path: Path, sinks: dict[str, Any]) -> None:
    @traced(workflow="nightly", **sinks)
    async def nightly() -> str:
        await get_trace().ainfo("top level")
        inner()
        return get_trace().run_id

    @traced
    def inner() -> None:
        get_trace().info("inner stage")

    run_id = asyncio.run(nightly())
    with open_store(tmp_path / "traces.db") as store:
        run = store.get_run(run_id)
    assert shape(run.tree) == [
        (0, "workflow", "nightly", "succeeded", 1),
        (1, "stage", "inner", "succeeded", 1),
    ]


def test_skipped_from_a_decorated_function_returns_none(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    @traced
    def maybe() -> int:
        raise Skipped("no input")

    with workflow("etl", run_id="run-dskip", **sinks):
        assert maybe() is None
    db, _ = read_runs("run-dskip")
    assert db.tree.find("maybe").status == "skipped"  # type: ignore[union-attr]


def test_names_propagate_to_copied_context_threads_and_asyncio_tasks(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    def work(label: str) -> None:
        get_trace().info(label)

    async def task(label: str) -> None:
        with stage(label):
            await asyncio.sleep(0.01)
            get_trace().info(label)

    async def gather() -> None:
        await asyncio.gather(task("task-a"), task("task-b"))

    with workflow("etl", run_id="run-prop", **sinks) as wf, job("parallel"):
        threads = []
        for i in range(4):
            ctx = contextvars.copy_context()
            t = threading.Thread(target=ctx.run, args=(work, f"thread-{i}"))
            threads.append(t)
            t.start()
        with ThreadPoolExecutor(2) as pool:
            ctx = contextvars.copy_context()
            pool.submit(ctx.run, work, "pool").result()
            # A thread that was not given the context sees no scope; the workflow's own trace
            # still stamps its run id and workflow name.
            pool.submit(wf.info, "bare thread").result()
        for t in threads:
            t.join()
        asyncio.run(gather())
    db, files = read_runs("run-prop")
    for run in (db, files):
        for i in range(4):
            assert names(run, f"thread-{i}") == ("run-prop", None, "etl", "parallel", None)
        assert names(run, "pool") == ("run-prop", None, "etl", "parallel", None)
        assert names(run, "bare thread") == ("run-prop", None, "etl", None, None)
        assert names(run, "task-a")[3:] == ("parallel", "task-a")
        assert names(run, "task-b")[3:] == ("parallel", "task-b")
    assert shape(db.tree) == shape(files.tree)
    assert {n.name for n in db.tree.walk() if n.kind == "stage"} == {"task-a", "task-b"}


def test_concurrent_workflows_in_threads_keep_their_own_runs(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    def one(i: int) -> str:
        with workflow(f"wf-{i}", run_id=f"conc-{i}", **sinks), job("j"), stage("s") as st:
            for k in range(20):
                st.info(f"{i}:{k}")
            return st.run_id

    with ThreadPoolExecutor(4) as pool:
        run_ids = list(pool.map(one, range(4)))
    for i, run_id in enumerate(run_ids):
        db, files = read_runs(run_id)
        for run in (db, files):
            assert [r.message for r in run.logs] == [f"{i}:{k}" for k in range(20)]
            assert {r.workflow_name for r in run.records} == {f"wf-{i}"}
            assert run.status == "succeeded"


def test_async_with_scopes(sinks: dict[str, Any], read_runs: ReadRuns) -> None:
    async def main() -> None:
        async with workflow("aetl", run_id="run-async", **sinks) as wf:
            async with job("j"), stage("s") as st:
                await st.ainfo("async stage")
            await wf.ainfo("done")

    asyncio.run(main())
    db, files = read_runs("run-async")
    assert (
        shape(db.tree)
        == shape(files.tree)
        == [
            (0, "workflow", "aetl", "succeeded", 1),
            (1, "job", "j", "succeeded", 1),
            (2, "stage", "s", "succeeded", 1),
        ]
    )


def test_bad_sink_settings_fail_before_any_event(tmp_path: Path) -> None:
    from workflow_traces import ConfigError

    bad = {"trace_type": "sqlite", "path": str(tmp_path / "x.db"), "buffer_size": -1}
    with pytest.raises(ConfigError, match="buffer_size"), workflow("etl", **bad):
        pytest.fail("the body must not run")
    assert current_scope().run_id is None
    with pytest.raises(ValueError, match="name"):
        workflow("")


def test_sinks_come_from_trace_settings_when_extras_choose_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow_traces.integrations.dag import Job, Stage, Workflow

    db = tmp_path / "from-env.db"
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", str(db))
    monkeypatch.setenv("TRACE_ENVIRONMENT", "ci")
    with workflow("env-plain", run_id="env-1") as wf:
        wf.info("plain")
    result = Workflow("env-dag", [Job("j", [Stage("s", lambda: get_trace().info("dag"))])]).run()
    with open_store(db) as store:
        plain_run = store.get_run("env-1")
        dag_run = store.get_run(result.run_id)
    assert [r.message for r in plain_run.logs] == ["plain"]
    assert [r.message for r in dag_run.logs] == ["dag"]
    assert all(_own_extras(r) == {"environment": "ci"} for r in plain_run.records + dag_run.records)
    assert not (tmp_path / "logs").exists()


def test_traced_generator_is_a_stage_over_its_iteration(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    @traced(stage="rows")
    def rows(n: int) -> Any:
        log = get_trace()
        got = []
        for i in range(n):
            log.info(f"yield {i}")
            got.append((yield i))
        log.info("rows done")
        return got

    @traced
    def broken() -> Any:
        yield 1
        raise ValueError("bad row")

    @traced
    def skipped() -> Any:
        yield 1
        raise Skipped("nothing more")

    @traced
    def endless() -> Any:
        i = 0
        while True:
            get_trace().info(f"endless {i}")
            yield i
            i += 1

    with workflow("etl", run_id="run-gen", **sinks), job("main"):
        gen = rows(3)
        assert current_scope().stage_name is None  # nothing opened before the first item
        first = next(gen)
        get_trace().info("consumer between items")  # the consumer keeps its own scope
        assert current_scope().stage_name is None
        assert [first, gen.send("a"), gen.send("b")] == [0, 1, 2]
        with pytest.raises(StopIteration) as stop:
            gen.send("c")
        assert stop.value.value == ["a", "b", "c"]
        with pytest.raises(ValueError, match="bad row"):
            list(broken())
        assert list(skipped()) == [1]
        for i in endless():
            if i == 2:
                break  # the consumer stops early: the generator is closed
    db, files = read_runs("run-gen")
    for run in (db, files):
        assert names(run, "yield 1") == ("run-gen", None, "etl", "main", "rows")
        assert names(run, "rows done")[4] == "rows"
        assert names(run, "consumer between items") == ("run-gen", None, "etl", "main", None)
        assert names(run, "endless 2")[4] == "endless"
    assert (
        shape(db.tree)
        == shape(files.tree)
        == [
            (0, "workflow", "etl", "succeeded", 1),
            (1, "job", "main", "succeeded", 1),
            (2, "stage", "rows", "succeeded", 1),
            (2, "stage", "broken", "failed", 1),
            (2, "stage", "skipped", "skipped", 1),
            (2, "stage", "endless", "cancelled", 1),
        ]
    )


def test_traced_generator_outside_any_scope_is_a_workflow(
    tmp_path: Path, sinks: dict[str, Any]
) -> None:
    @traced(workflow="stream", **sinks)
    def stream() -> Any:
        yield get_trace().run_id
        get_trace().info("after the first item")

    (run_id,) = list(stream())
    assert current_scope().run_id is None  # nothing left open
    with open_store(tmp_path / "traces.db") as store:
        run = store.get_run(run_id)
    assert shape(run.tree) == [(0, "workflow", "stream", "succeeded", 1)]
    assert [r.message for r in run.logs] == ["after the first item"]


def test_traced_generator_takes_what_is_thrown_in(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    @traced
    def resilient() -> Any:
        try:
            yield "first"
        except KeyError:
            get_trace().info("recovered")
            yield "recovered"

    with workflow("etl", run_id="run-throw", **sinks):
        gen = resilient()
        assert next(gen) == "first"
        assert gen.throw(KeyError("x")) == "recovered"
        with pytest.raises(KeyError):
            gen.throw(KeyError("again"))  # not caught this time: the stage fails
    db, _ = read_runs("run-throw")
    assert names(db, "recovered")[4] == "resilient"
    assert db.tree.find("resilient").status == "failed"  # type: ignore[union-attr]


def test_traced_refuses_an_async_generator_function() -> None:
    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match=r"agen is an async generator function"):
        traced(agen)
