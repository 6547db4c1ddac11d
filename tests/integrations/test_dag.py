"""The built-in DAG runner: order, parallelism, failure and skipping, retries, timeouts,
refusals, parameter injection, and the trace it leaves (read back from both stores)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from integ_helpers import shape
from workflow_traces.integrations.dag import (
    Job,
    Stage,
    StageTimeoutError,
    Workflow,
    WorkflowDefinitionError,
)

from workflow_traces import ConfigError, Run, get_trace

ReadRuns = Callable[[str], tuple[Run, Run]]


def noop() -> None:
    return None


class Recorder:
    """Notes when each stage starts and ends, and how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[str] = []
        self.active = 0
        self.peak = 0

    def stage(self, name: str, pause: float = 0.0) -> Callable[[], str]:
        def fn() -> str:
            with self.lock:
                self.log.append(f"start {name}")
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(pause)
            with self.lock:
                self.active -= 1
                self.log.append(f"end {name}")
            return name

        fn.__name__ = name
        return fn


def test_jobs_run_in_dependency_order(sinks: dict[str, Any], read_runs: ReadRuns) -> None:
    rec = Recorder()
    wf = Workflow(
        "order",
        jobs=[
            Job("load", [Stage("l", rec.stage("load"))], needs=["transform", "extract"]),
            Job("transform", [Stage("t", rec.stage("transform"))], needs=["extract"]),
            Job("extract", [Stage("e1", rec.stage("e1")), Stage("e2", rec.stage("e2"))]),
        ],
        max_workers=4,
        extras=sinks,
    )
    result = wf.run()
    assert result.status == "succeeded" and result.ok
    assert rec.log == [
        "start e1",
        "end e1",
        "start e2",
        "end e2",
        "start transform",
        "end transform",
        "start load",
        "end load",
    ]
    assert list(result.jobs) == ["extract", "transform", "load"]
    assert all(j.status == "succeeded" and j.duration >= 0 for j in result.jobs.values())
    assert result.jobs["extract"].stages["e2"].output == "e2"
    db, files = read_runs(result.run_id)
    assert (
        shape(db.tree)
        == shape(files.tree)
        == [
            (0, "workflow", "order", "succeeded", 1),
            (1, "job", "extract", "succeeded", 1),
            (2, "stage", "e1", "succeeded", 1),
            (2, "stage", "e2", "succeeded", 1),
            (1, "job", "transform", "succeeded", 1),
            (2, "stage", "t", "succeeded", 1),
            (1, "job", "load", "succeeded", 1),
            (2, "stage", "l", "succeeded", 1),
        ]
    )


def test_independent_jobs_run_in_parallel() -> None:
    # Each job waits for the other at a barrier: this only finishes if both run at once.
    barrier = threading.Barrier(2, timeout=20)

    def meet() -> int:
        return barrier.wait()

    wf = Workflow(
        "parallel",
        jobs=[Job("a", [Stage("meet", meet)]), Job("b", [Stage("meet", meet)])],
        max_workers=2,
    )
    result = wf.run()
    assert result.status == "succeeded"
    outputs = {j.stages["meet"].output for j in result.jobs.values()}
    assert outputs == {0, 1}


def test_max_workers_bounds_concurrency(sinks: dict[str, Any]) -> None:
    rec = Recorder()
    jobs = [Job(f"j{i}", [Stage("s", rec.stage(f"j{i}", 0.02))]) for i in range(4)]
    assert Workflow("one", jobs, max_workers=1, extras=sinks).run().ok
    assert rec.peak == 1


def test_a_failed_stage_fails_its_job_skips_dependants_and_others_go_on(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    ran: list[str] = []

    def ok(label: str) -> Callable[[], None]:
        def fn() -> None:
            ran.append(label)

        return fn

    def broken() -> None:
        ran.append("broken")
        raise ValueError("bad input file")

    wf = Workflow(
        "failing",
        jobs=[
            Job("extract", [Stage("read", broken), Stage("after", ok("after"))]),
            Job("transform", [Stage("t", ok("transform"))], needs=["extract"]),
            Job("load", [Stage("l", ok("load"))], needs=["transform"]),
            Job("audit", [Stage("a", ok("audit"))]),
        ],
        max_workers=2,
        extras=sinks,
    )
    result = wf.run()
    assert result.status == "failed" and not result.ok
    assert sorted(ran) == ["audit", "broken"]
    statuses = {name: job.status for name, job in result.jobs.items()}
    assert statuses == {
        "extract": "failed",
        "transform": "skipped",
        "load": "skipped",
        "audit": "succeeded",
    }
    extract = result.jobs["extract"]
    assert isinstance(extract.error, ValueError)
    assert extract.stages["read"].status == "failed"
    assert extract.stages["after"].status == "skipped"
    assert result.jobs["load"].stages["l"].status == "skipped"
    db, files = read_runs(result.run_id)
    assert db.status == "failed"
    assert shape(db.tree) == shape(files.tree)
    tree = db.tree
    assert tree.status == "failed"
    transform = tree.find("transform", "job")
    load = tree.find("load", "job")
    assert transform is not None and transform.status == "skipped"
    assert transform.error == "Skipped: needs 'extract', which failed"
    assert load is not None and load.error == "Skipped: needs 'transform', which skipped"
    after = tree.find("after", "stage")
    assert after is not None and after.status == "skipped"
    read = tree.find("read", "stage")
    assert read is not None and read.error == "ValueError: bad input file"


def test_retries_rerun_a_failed_stage(sinks: dict[str, Any], read_runs: ReadRuns) -> None:
    attempts = {"flaky": 0, "hopeless": 0}

    def flaky() -> str:
        attempts["flaky"] += 1
        get_trace().info(f"attempt {attempts['flaky']}")
        if attempts["flaky"] < 3:
            raise ConnectionError("try again")
        return "ok"

    def hopeless() -> None:
        attempts["hopeless"] += 1
        raise ConnectionError("never")

    wf = Workflow(
        "retrying",
        jobs=[
            Job("good", [Stage("flaky", flaky, retries=2)]),
            Job("bad", [Stage("hopeless", hopeless, retries=1, retry_delay=0.01)]),
        ],
        extras=sinks,
    )
    result = wf.run()
    assert attempts == {"flaky": 3, "hopeless": 2}
    good = result.jobs["good"].stages["flaky"]
    assert (good.status, good.attempts, good.output) == ("succeeded", 3, "ok")
    bad = result.jobs["bad"].stages["hopeless"]
    assert (bad.status, bad.attempts) == ("failed", 2)
    db, files = read_runs(result.run_id)
    assert shape(db.tree) == shape(files.tree)
    tries = db.tree.find_all("flaky", "stage")
    assert [(n.status, n.attempt) for n in tries] == [
        ("failed", 1),
        ("failed", 2),
        ("succeeded", 3),
    ]
    assert [r.message for r in tries[2].records] == ["attempt 3"]
    assert db.tree.find("good", "job").status == "succeeded"  # type: ignore[union-attr]


def test_timeouts_fail_the_attempt_sync_and_async(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    release = threading.Event()
    calls = {"slow": 0}

    def slow_then_fast() -> str:
        calls["slow"] += 1
        if calls["slow"] == 1:
            release.wait(10)  # the first attempt hangs past its timeout
        return "fast"

    async def never() -> None:
        await asyncio.sleep(30)

    wf = Workflow(
        "timeouts",
        jobs=[
            Job("sync", [Stage("slow", slow_then_fast, retries=1, timeout=0.3)]),
            Job("async", [Stage("never", never, timeout=0.2)]),
        ],
        extras=sinks,
    )
    try:
        result = wf.run()
    finally:
        release.set()
    slow = result.jobs["sync"].stages["slow"]
    assert (slow.status, slow.attempts, slow.output) == ("succeeded", 2, "fast")
    never_result = result.jobs["async"].stages["never"]
    assert never_result.status == "failed"
    assert isinstance(never_result.error, StageTimeoutError)
    assert "0.2s" in str(never_result.error)
    db, _ = read_runs(result.run_id)
    first = db.tree.find_all("slow", "stage")[0]
    assert first.status == "failed" and "StageTimeoutError" in (first.error or "")


def test_params_and_outputs_are_injected_by_name() -> None:
    seen: dict[str, Any] = {}

    def fetch(day: str, limit: int = 10) -> list[int]:
        seen["fetch"] = (day, limit)
        return list(range(3))

    def count(outputs: Any) -> int:
        seen["count_outputs"] = dict(outputs)
        return len(outputs["fetch"])

    def report(outputs: Any, **kwargs: Any) -> str:
        seen["report"] = (dict(outputs), sorted(kwargs))
        return "done"

    async def apost(day: str) -> str:
        await asyncio.sleep(0)
        return f"posted {day}"

    wf = Workflow(
        "inject",
        jobs=[
            Job("extract", [Stage("fetch", fetch), Stage("count", count)]),
            Job("report", [Stage("report", report), Stage("post", apost)], needs="extract"),
        ],
        params={"day": "2024-01-01", "unused": 1},
    )
    result = wf.run(params={"limit": 2})
    assert result.ok
    assert seen["fetch"] == ("2024-01-01", 2)
    assert seen["count_outputs"] == {"fetch": [0, 1, 2]}
    outputs, kwargs = seen["report"]
    assert outputs == {"extract": {"fetch": [0, 1, 2], "count": 3}}
    assert kwargs == ["day", "limit", "unused"]
    assert result.jobs["report"].stages["post"].output == "posted 2024-01-01"


def test_missing_params_refuse_the_run_before_anything_runs() -> None:
    ran: list[str] = []

    def needs_day(day: str) -> None:
        ran.append(day)

    wf = Workflow("p", jobs=[Job("j", [Stage("s", needs_day)])])
    with pytest.raises(ConfigError, match=r"job 'j', stage 's' needs 'day'"):
        wf.run()
    assert ran == []


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        (
            [Job("a", [Stage("s", noop)], needs=["b"]), Job("b", [Stage("s", noop)], needs=["a"])],
            "the jobs form a cycle: a -> b -> a",
        ),
        (
            [
                Job("a", [Stage("s", noop)]),
                Job("b", [Stage("s", noop)], needs=["c"]),
                Job("c", [Stage("s", noop)], needs=["d"]),
                Job("d", [Stage("s", noop)], needs=["b"]),
            ],
            "cycle: b -> c -> d -> b",
        ),
        ([Job("a", [Stage("s", noop)], needs=["a"])], "job 'a': needs itself"),
        ([Job("a", [Stage("s", noop)], needs=["ghost"])], "job 'a': needs unknown job 'ghost'"),
        ([Job("a", [Stage("s", noop)]), Job("a", [Stage("t", noop)])], "job 'a': duplicate job"),
        ([Job("a", [Stage("s", noop), Stage("s", noop)])], "stage 's': duplicate stage name"),
        ([Job("a", [Stage("s", noop, retries=-1)])], "retries must be a whole number >= 0"),
        ([Job("a", [Stage("s", noop, timeout=0)])], "timeout must be > 0 seconds"),
        ([Job("a", [Stage("s", "no_such_module_xyz:fn")])], "cannot import module"),
        ([Job("a", [Stage("s", "os:no_such_fn")])], "has no attribute 'no_such_fn'"),
        ([Job("a", [Stage("s", 42)])], "fn must be callable"),  # type: ignore[arg-type]
        ([Job("a", [Stage("s", divmod)])], "positional-only"),
        ([Job("a", [])], "job 'a': has no stages"),
        ([], "a workflow needs at least one job"),
        (
            [Job("x", [Stage("s", noop)]), Job("y", [Stage("x", noop)], needs=["x"])],
            "outputs['x'] would be ambiguous",
        ),
    ],
)
def test_bad_definitions_are_refused_when_made(jobs: list[Job], message: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match="is invalid") as info:
        Workflow("bad", jobs)
    assert message in str(info.value)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        Workflow(
            "bad",
            [Job("a", [Stage("s", noop, retries=-2)], needs=["nope"]), Job("a", [])],
            max_workers=0,
        )
    text = str(info.value)
    for part in ("max_workers", "duplicate job name", "needs unknown job 'nope'", "retries"):
        assert part in text
    assert len(text.splitlines()) >= 5


def test_stage_given_by_import_path() -> None:
    wf = Workflow("paths", [Job("a", [Stage("dedent", "textwrap:dedent")])])
    result = wf.run(params={"text": "    indented"})
    assert result.jobs["a"].stages["dedent"].output == "indented"


def test_an_interrupt_cancels_the_run_and_what_had_not_started(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    wf = Workflow(
        "interrupted",
        jobs=[
            Job("a", [Stage("stop", interrupted)]),
            Job("b", [Stage("never", noop)], needs=["a"]),
        ],
        extras=sinks,
    )
    with pytest.raises(KeyboardInterrupt):
        wf.run(run_id="run-int")
    db, files = read_runs("run-int")
    assert db.status == "cancelled"
    assert (
        shape(db.tree)
        == shape(files.tree)
        == [
            (0, "workflow", "interrupted", "cancelled", 1),
            (1, "job", "a", "cancelled", 1),
            (2, "stage", "stop", "cancelled", 1),
            (1, "job", "b", "cancelled", 1),
        ]
    )


def test_a_dag_run_inside_a_plain_workflow_is_its_child(
    sinks: dict[str, Any], read_runs: ReadRuns
) -> None:
    from workflow_traces.integrations.plain import stage, workflow

    inner = Workflow("inner", [Job("j", [Stage("s", noop)])])
    with workflow("outer", run_id="outer-1", **sinks), stage("call"):
        result = inner.run()
    db, files = read_runs(result.run_id)
    assert db.parent_run_id == files.parent_run_id == "outer-1"
    assert db.workflow_name == "inner" and db.status == "succeeded"
    outer_db, _ = read_runs("outer-1")
    assert [c.run_id for c in outer_db.child_runs] == [result.run_id]
