"""The DAG runner's ``Workflow``: checking a definition when it is made, and running it
(jobs scheduled on a thread pool in dependency order, stages with retries, all traced through
``plain``); and ``load_workflow`` for definition files. See ``dag`` for the semantics."""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import MappingProxyType
from typing import Any

from workflow_traces import ConfigError, SQLiteHandler, WorkflowFileHandler

from . import plain
from ._dag_call import _Call, _call, _inspect
from ._dag_file import definition_from_dict, read_definition
from ._dag_model import (
    Job,
    JobResult,
    Stage,
    StageResult,
    WorkflowDefinitionError,
    WorkflowFailed,
    WorkflowResult,
    resolve_callable,
)

__all__ = ["Workflow", "load_workflow"]


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
        parts = definition_from_dict(data, source)
        try:
            return cls(
                parts.name, parts.jobs, parts.max_workers, params=parts.params, extras=parts.extras
            )
        except WorkflowDefinitionError as exc:
            raise WorkflowDefinitionError(f"{source}: {exc}") from None

    # -- running ---------------------------------------------------------------------------------
    def param_names(self) -> frozenset[str] | None:
        """The params this workflow takes: its default params and every keyword its stages'
        callables name (``outputs`` aside); None when a stage takes ``**kwargs`` (any name)."""
        names = set(self.params)
        for call in self._calls.values():
            if call.var_kw:
                return None
            names |= call.names
        names.discard("outputs")
        return frozenset(names)

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
              - {name: report, command: ["python", "report.py"]}   # or a command line

    ``fn`` names a function by import path; ``command`` is a stage that runs a command (see
    ``dag.command``: a string is run by ``/bin/sh -c``, a list without a shell). The file's
    folder is put on ``sys.path`` first, so modules next to the definition import without
    installing them.
    """
    data, source = read_definition(path)
    return Workflow.from_dict(data, source)
