"""A minimal DAG runner: jobs of ordered stages, run in dependency order on a thread pool.

::

    from workflow_traces.integrations.dag import Job, Stage, Workflow

    def fetch(date): ...
    def clean(outputs): return len(outputs["fetch"])

    wf = Workflow("etl", jobs=[
        Job("extract", stages=[Stage("fetch", fetch, retries=2, timeout=30)]),
        Job("transform", stages=[Stage("clean", clean)], needs=["extract"]),
    ], max_workers=4)
    result = wf.run(params={"date": "2024-01-01"})
    result.status, result.jobs["transform"].stages["clean"].output

Semantics:

- A stage's callable is called with keyword arguments: the run's params it names, and
  ``outputs`` if it names it (or all of them, if it takes ``**kwargs``). ``outputs`` maps each
  earlier stage of the same job to its return value, and each job this job needs (directly or
  not) to a dict of that job's stage results.
- Jobs start once every job they need has succeeded; independent jobs run at once, up to
  ``max_workers``. A failed stage fails its job and skips the job's later stages; jobs that need
  a failed or skipped job are skipped; the others go on. The workflow fails if any job did not
  succeed. ``run`` returns the result; it raises only for bad params or sink settings, or when
  interrupted.
- ``retries``: a failed stage runs again, up to that many more times (each attempt is its own
  stage scope in the trace). ``timeout``: seconds an attempt may take. A sync callable runs in
  a helper thread that is left running when time is up (Python cannot stop a thread); an async
  callable is cancelled.
- Bad definitions are refused when the Workflow is made, before anything runs: duplicate
  names, unknown or cyclic ``needs``, bad retries/timeouts, callables that cannot take keyword
  arguments.
- Everything is traced through ``workflow_traces.integrations.plain``: the run is a workflow
  scope, each job a job scope, each attempt of a stage a stage scope. ``get_trace()`` inside a
  stage returns the run's trace stamped with its names.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import inspect
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from workflow_traces import ConfigError, SQLiteHandler, WorkflowFileHandler

from . import plain

__all__ = [
    "Job",
    "JobResult",
    "Stage",
    "StageResult",
    "StageTimeoutError",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowFailed",
    "WorkflowResult",
    "load_workflow",
    "resolve_callable",
]


class WorkflowDefinitionError(ConfigError):
    """The workflow definition is invalid; the message lists every problem, one a line."""


class StageTimeoutError(TimeoutError):
    """A stage attempt ran longer than its ``timeout``."""


def resolve_callable(path: str) -> Callable[..., Any]:
    """The object named by ``"package.module:function"`` (or ``"module:Class.method"``)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'package.module:function', got {path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} (from {path!r}): {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{path!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Stage:
    """One step of a job: ``fn`` is a callable, or an import path ``"pkg.mod:func"``.

    ``retries``: extra attempts after a failure; ``timeout``: seconds per attempt;
    ``retry_delay``: seconds to wait between attempts.
    """

    name: str
    fn: Callable[..., Any] | str
    retries: int = 0
    timeout: float | None = None
    retry_delay: float = 0.0


@dataclass(frozen=True)
class Job:
    """Ordered stages, run once every job in ``needs`` has succeeded."""

    name: str
    stages: Sequence[Stage]
    needs: Sequence[str] = ()

    def __post_init__(self) -> None:
        needs = (self.needs,) if isinstance(self.needs, str) else tuple(self.needs or ())
        object.__setattr__(self, "needs", needs)
        object.__setattr__(self, "stages", tuple(self.stages or ()))


@dataclass
class StageResult:
    """How a stage ended: ``status`` (succeeded, failed, skipped, cancelled), ``duration`` in
    seconds over all attempts, ``attempts`` made, ``output`` (its return value) and ``error``."""

    name: str
    status: str
    duration: float = 0.0
    attempts: int = 0
    output: Any = None
    error: BaseException | None = None


@dataclass
class JobResult:
    """How a job ended, with its stages' results by name."""

    name: str
    status: str
    duration: float = 0.0
    stages: dict[str, StageResult] = field(default_factory=dict)
    error: BaseException | None = None


@dataclass
class WorkflowResult:
    """How a run ended: ``run_id``, ``status`` (succeeded or failed), ``jobs`` by name, and
    ``locations``: the file-sink folders and SQLite databases it was traced to (for
    ``open_store``)."""

    name: str
    run_id: str
    status: str
    duration: float
    jobs: dict[str, JobResult]
    locations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


class WorkflowFailed(Exception):
    """Ends the workflow scope as failed when a job did not succeed (``run`` catches it: it
    never reaches the caller)."""


@dataclass(frozen=True)
class _Call:
    """How to call a stage's callable: which keywords it takes, and which it must have."""

    fn: Callable[..., Any]
    names: frozenset[str]
    required: frozenset[str]
    var_kw: bool
    is_async: bool


def _inspect(fn: Callable[..., Any]) -> _Call | str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return _Call(fn, frozenset(), frozenset(), True, inspect.iscoroutinefunction(fn))
    names: set[str] = set()
    required: set[str] = set()
    var_kw = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.kind is p.POSITIONAL_ONLY:
            if p.default is p.empty:
                return f"its parameter {p.name!r} is positional-only; stages take keywords"
        else:
            names.add(p.name)
            if p.default is p.empty:
                required.add(p.name)
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async __call__ on an instance
    )
    return _Call(fn, frozenset(names), frozenset(required), var_kw, is_async)


def _find_cycle(needs: dict[str, tuple[str, ...]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in needs.get(name, ()):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep in needs and dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for name in needs:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


class Workflow:
    """Jobs of stages, checked when made and run by ``run()``.

    ``params`` are default params for every run; ``extras`` are the trace's (``get_trace``'s
    extras: ``trace_type``, ``handlers``, ``path``, ``fail_silently``, stamps); without them the
    TRACE_* settings apply.
    """

    def __init__(
        self,
        name: str,
        jobs: Sequence[Job],
        max_workers: int | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.jobs: tuple[Job, ...] = tuple(jobs or ())
        self.max_workers = max_workers
        self.params: dict[str, Any] = dict(params or {})
        self.extras: dict[str, Any] = dict(extras or {})
        self._calls: dict[tuple[str, str], _Call] = {}
        self._validate()
        self._by_name = {j.name: j for j in self.jobs}
        self._order = self._topological()
        self._upstream = {j.name: self._ancestors(j.name) for j in self.jobs}

    # -- checking the definition -----------------------------------------------------------------
    def _validate(self) -> None:
        problems: list[str] = []
        if not isinstance(self.name, str) or not self.name:
            problems.append(f"name: expected a non-empty string, got {self.name!r}")
        if self.max_workers is not None and (
            not isinstance(self.max_workers, int)
            or isinstance(self.max_workers, bool)
            or self.max_workers < 1
        ):
            problems.append(f"max_workers: must be a whole number >= 1, got {self.max_workers!r}")
        if not self.jobs:
            problems.append("jobs: a workflow needs at least one job")
        seen: set[str] = set()
        given: list[Any] = list(self.jobs)  # checked at run time: they may be anything
        for job in given:
            if not isinstance(job, Job):
                problems.append(f"jobs: expected Job objects, got {type(job).__name__}")
                continue
            if not isinstance(job.name, str) or not job.name:
                problems.append(f"job name: expected a non-empty string, got {job.name!r}")
            elif job.name in seen:
                problems.append(f"job {job.name!r}: duplicate job name")
            seen.add(job.name)
        names = {j.name for j in self.jobs if isinstance(j, Job)}
        for job in self.jobs:
            if isinstance(job, Job):
                problems.extend(self._check_job(job, names))
        if not problems:
            cycle = _find_cycle({j.name: tuple(j.needs) for j in self.jobs})
            if cycle:
                problems.append("needs: the jobs form a cycle: " + " -> ".join(cycle))
        if not problems:
            for job in self.jobs:
                upstream = self._ancestors_of(job.name)
                for st in job.stages:
                    if st.name in upstream:
                        problems.append(
                            f"job {job.name!r}: stage {st.name!r} has the name of a job it "
                            f"needs, so outputs[{st.name!r}] would be ambiguous; rename one"
                        )
        if problems:
            text = "\n".join(f"  - {p}" for p in problems)
            raise WorkflowDefinitionError(f"workflow {self.name!r} is invalid:\n{text}")

    def _check_job(self, job: Job, names: set[str]) -> list[str]:
        problems: list[str] = []
        where = f"job {job.name!r}"
        for dep in job.needs:
            if dep == job.name:
                problems.append(f"{where}: needs itself")
            elif dep not in names:
                problems.append(
                    f"{where}: needs unknown job {dep!r}; jobs are: {', '.join(sorted(names))}"
                )
        if not job.stages:
            problems.append(f"{where}: has no stages")
        seen: set[str] = set()
        given: list[Any] = list(job.stages)
        for st in given:
            if not isinstance(st, Stage):
                problems.append(f"{where}: expected Stage objects, got {type(st).__name__}")
                continue
            at = f"{where}, stage {st.name!r}"
            if not isinstance(st.name, str) or not st.name:
                problems.append(
                    f"{where}: stage name: expected a non-empty string, got {st.name!r}"
                )
                continue
            if st.name in seen:
                problems.append(f"{at}: duplicate stage name in the job")
            seen.add(st.name)
            if not isinstance(st.retries, int) or isinstance(st.retries, bool) or st.retries < 0:
                problems.append(f"{at}: retries must be a whole number >= 0, got {st.retries!r}")
            if st.timeout is not None and (
                not isinstance(st.timeout, int | float)
                or isinstance(st.timeout, bool)
                or st.timeout <= 0
            ):
                problems.append(f"{at}: timeout must be > 0 seconds or None, got {st.timeout!r}")
            if (
                not isinstance(st.retry_delay, int | float)
                or isinstance(st.retry_delay, bool)
                or st.retry_delay < 0
            ):
                problems.append(f"{at}: retry_delay must be >= 0, got {st.retry_delay!r}")
            fn: Any = st.fn
            if isinstance(fn, str):
                try:
                    fn = resolve_callable(fn)
                except ValueError as exc:
                    problems.append(f"{at}: fn: {exc}")
                    continue
            if not callable(fn):
                problems.append(f"{at}: fn must be callable, got {type(fn).__name__}")
                continue
            call = _inspect(fn)
            if isinstance(call, str):
                problems.append(f"{at}: fn {getattr(fn, '__name__', fn)!r}: {call}")
            else:
                self._calls[(job.name, st.name)] = call
        return problems

    def _ancestors_of(self, name: str) -> set[str]:
        needs = {j.name: j.needs for j in self.jobs}
        out: set[str] = set()
        todo = list(needs.get(name, ()))
        while todo:
            dep = todo.pop()
            if dep not in out:
                out.add(dep)
                todo.extend(needs.get(dep, ()))
        return out

    def _ancestors(self, name: str) -> tuple[str, ...]:
        found = self._ancestors_of(name)
        return tuple(n for n in self._order if n in found)

    def _topological(self) -> tuple[str, ...]:
        order: list[str] = []
        placed: set[str] = set()
        while len(order) < len(self.jobs):
            for job in self.jobs:  # definition order among the ready ones
                if job.name not in placed and all(d in placed for d in job.needs):
                    order.append(job.name)
                    placed.add(job.name)
        return tuple(order)

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Workflow:
        """Load a definition from a YAML or TOML file; see ``load_workflow``."""
        return load_workflow(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Workflow:
        """Build from a mapping shaped like a definition file."""
        from ._dag_file import workflow_from_dict

        return workflow_from_dict(data, source)

    # -- running ---------------------------------------------------------------------------------
    def _check_params(self, params: Mapping[str, Any]) -> None:
        missing = []
        for job in self.jobs:
            for st in job.stages:
                call = self._calls[(job.name, st.name)]
                lack = sorted(call.required - {"outputs"} - params.keys())
                if lack:
                    names = ", ".join(repr(n) for n in lack)
                    missing.append(f"  - job {job.name!r}, stage {st.name!r} needs {names}")
        if missing:
            raise ConfigError(
                f"params: workflow {self.name!r} cannot run without these params:\n"
                + "\n".join(missing)
            )

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> WorkflowResult:
        """Run every job once and return the result. ``params`` are added over the
        workflow's default params. A run that cannot start (missing params, bad sink settings)
        raises ConfigError before anything runs."""
        merged = {**self.params, **(params or {})}
        self._check_params(merged)
        results: dict[str, JobResult] = {}
        t0 = time.perf_counter()
        status = "succeeded"
        locations: list[str] = []
        try:
            with plain.workflow(self.name, run_id, parent_run_id, **self.extras) as trace:
                run_id = trace.run_id
                locations = _locations(trace)
                self._schedule(merged, results)
                bad = [n for n in self._order if results[n].status != "succeeded"]
                if bad:
                    raise WorkflowFailed(
                        "jobs that did not succeed: "
                        + ", ".join(f"{n} ({results[n].status})" for n in bad)
                    )
        except WorkflowFailed:
            status = "failed"
        assert run_id is not None
        jobs = {name: results[name] for name in self._order}
        return WorkflowResult(self.name, run_id, status, time.perf_counter() - t0, jobs, locations)

    def _schedule(self, params: dict[str, Any], results: dict[str, JobResult]) -> None:
        pending = list(self._order)
        running: dict[Future[JobResult], str] = {}
        pool = ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix=f"dag-{self.name}"
        )
        try:
            while pending or running:
                changed = True
                while changed:  # skipping one job can make others skippable
                    changed = False
                    for name in list(pending):
                        job = self._by_name[name]
                        blocked = [
                            d
                            for d in job.needs
                            if d in results and results[d].status != "succeeded"
                        ]
                        if blocked:
                            pending.remove(name)
                            results[name] = self._skip_job(job, blocked, results)
                            changed = True
                        elif all(d in results for d in job.needs):
                            pending.remove(name)
                            upstream = {
                                d: {s: r.output for s, r in results[d].stages.items()}
                                for d in self._upstream[name]
                            }
                            ctx = contextvars.copy_context()
                            fut = pool.submit(ctx.run, self._run_job, job, params, upstream)
                            running[fut] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[running.pop(fut)] = fut.result()
        except BaseException as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            why = f"the run was interrupted: {type(exc).__name__}"
            for name in pending + [n for f, n in running.items() if f.cancelled()]:
                plain.mark_cancelled(name, "job", why)
                results[name] = JobResult(name, "cancelled", error=exc)
            raise
        pool.shutdown(wait=True)

    def _skip_job(self, job: Job, blocked: list[str], results: dict[str, JobResult]) -> JobResult:
        reason = "; ".join(f"needs {d!r}, which {results[d].status}" for d in blocked)
        plain.mark_skipped(job.name, "job", reason)
        stages = {st.name: StageResult(st.name, "skipped") for st in job.stages}
        return JobResult(job.name, "skipped", 0.0, stages)

    def _run_job(
        self, job: Job, params: dict[str, Any], upstream: dict[str, dict[str, Any]]
    ) -> JobResult:
        t0 = time.perf_counter()
        stages: dict[str, StageResult] = {}
        outputs: dict[str, Any] = dict(upstream)
        try:
            with plain.job(job.name):
                for index, st in enumerate(job.stages):
                    res = self._run_stage(job, st, params, outputs)
                    stages[st.name] = res
                    if res.status != "succeeded":
                        for later in job.stages[index + 1 :]:
                            plain.mark_skipped(later.name, "stage", f"stage {st.name!r} failed")
                            stages[later.name] = StageResult(later.name, "skipped")
                        assert res.error is not None
                        raise res.error
                    outputs[st.name] = res.output
        except Exception as exc:
            return JobResult(job.name, "failed", time.perf_counter() - t0, stages, exc)
        return JobResult(job.name, "succeeded", time.perf_counter() - t0, stages)

    def _run_stage(
        self, job: Job, st: Stage, params: dict[str, Any], outputs: dict[str, Any]
    ) -> StageResult:
        call = self._calls[(job.name, st.name)]
        view = MappingProxyType(dict(outputs))
        if call.var_kw:
            kwargs = {**params, "outputs": view}
        else:
            kwargs = {k: v for k, v in params.items() if k in call.names}
            if "outputs" in call.names:
                kwargs["outputs"] = view
        t0 = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                with plain.stage(st.name):
                    output = _call(call, kwargs, st)
            except Exception as exc:
                if attempt > st.retries:
                    return StageResult(
                        st.name, "failed", time.perf_counter() - t0, attempt, None, exc
                    )
                if st.retry_delay:
                    time.sleep(st.retry_delay)
                continue
            return StageResult(st.name, "succeeded", time.perf_counter() - t0, attempt, output)


def _call(call: _Call, kwargs: dict[str, Any], st: Stage) -> Any:
    if call.is_async:
        coro = call.fn(**kwargs)
        if st.timeout is None:
            return asyncio.run(coro)

        async def bounded() -> Any:
            try:
                return await asyncio.wait_for(coro, st.timeout)
            except TimeoutError:
                raise StageTimeoutError(
                    f"stage {st.name!r} did not finish within {st.timeout}s and was cancelled"
                ) from None

        return asyncio.run(bounded())
    if st.timeout is None:
        return call.fn(**kwargs)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call.fn(**kwargs)
        except BaseException as exc:
            box["error"] = exc

    ctx = contextvars.copy_context()
    worker = threading.Thread(
        target=ctx.run, args=(target,), name=f"dag-stage-{st.name}", daemon=True
    )
    worker.start()
    worker.join(st.timeout)
    if worker.is_alive():
        raise StageTimeoutError(
            f"stage {st.name!r} did not finish within {st.timeout}s; it was left running in "
            "the background (Python cannot stop a thread)"
        )
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _locations(trace: Any) -> list[str]:
    out = [str(h.log_dir) for h in trace.get_handlers_by_type(WorkflowFileHandler)]
    out += [str(h.db_path) for h in trace.get_handlers_by_type(SQLiteHandler)]
    return out


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Load a workflow from a YAML (.yaml/.yml, needs pyyaml) or TOML (.toml) file.

    Shape (YAML)::

        name: etl
        max_workers: 4
        params: {date: "2024-01-01"}        # defaults; run(params=...) adds over them
        trace:                              # optional: get_trace extras choosing the sinks
          trace_type: sqlite
          path: ./logs/etl.db
        jobs:
          - name: extract
            stages:
              - {name: fetch, fn: "mypkg.tasks:fetch", retries: 2, timeout: 30}
          - name: transform
            needs: [extract]
            stages:
              - {name: clean, fn: "mypkg.tasks:clean"}

    ``fn`` names a function by import path. The file's folder is put on ``sys.path`` first, so
    modules next to the definition import without installing them.
    """
    from ._dag_file import load

    return load(path)
