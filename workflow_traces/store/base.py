"""The read side's one interface: ``Store``, and the summary rules every store shares.

A store answers ``list_runs``, ``get_run``, ``iter_records`` (filtered, paged, streamed: never a
whole run in memory), ``follow`` (records as they land, until the run ends) and ``run_tree``
(the run's workflow → jobs → stages with its child runs nested where they ran). The SQLite,
file-folder and Elasticsearch stores implement the few primitives underneath.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from workflow_traces.core.record import _EPOCH, Record
from workflow_traces.errors import ConfigError, RunNotFoundError
from workflow_traces.store.query import Filters
from workflow_traces.store.status import END_EVENTS, jobs_status

if TYPE_CHECKING:
    from workflow_traces.store.tree import Node

__all__ = [
    "STATUSES",
    "Run",
    "RunSummary",
    "Store",
    "child_counts",
    "jobs_status",
    "select_runs",
    "summarize",
]

#: Every status a run can have (``list_runs(status=...)`` takes these).
STATUSES = (*END_EVENTS, "unfinished")

#: (event, time_ns, duration) of a workflow lifecycle event.
WorkflowEvent = tuple[str, int, float | None]
#: (event, time_ns, duration, job_name) of a job lifecycle event.
JobEvent = tuple[str, int, float | None, str | None]


def _dt(time_ns: int | None) -> datetime | None:
    if time_ns is None:
        return None
    return _EPOCH + timedelta(microseconds=time_ns // 1000)


@dataclass(frozen=True)
class RunSummary:
    """One run, as ``list_runs`` gives it.

    ``status`` is the last workflow lifecycle event's ("succeeded", "failed", "skipped",
    "cancelled"), "unfinished" when the workflow started and never ended. A run without
    workflow events (a Prefect subflow) takes its status from its job events: "unfinished"
    while a job is open, else "failed" if one failed, "cancelled" if one was, "skipped" if all
    were, else "succeeded". None when the run has no lifecycle events at all. ``started`` and
    ``ended`` come from those events, or else from the first and last records.
    """

    run_id: str
    parent_run_id: str | None
    workflow_name: str | None
    status: str | None
    started: datetime | None
    ended: datetime | None
    duration: float | None
    record_count: int


@dataclass(frozen=True)
class Run(RunSummary):
    """One run with its records in order and the runs whose parent it is."""

    records: list[Record] = field(default_factory=list)
    child_runs: list[RunSummary] = field(default_factory=list)

    @property
    def events(self) -> list[Record]:
        return [r for r in self.records if r.kind == "event"]

    @property
    def logs(self) -> list[Record]:
        return [r for r in self.records if r.kind == "log"]

    @property
    def tree(self) -> Node:
        """The run as workflow → jobs → stages, built from its lifecycle events; each node has
        its status, duration, own log lines and children (see ``Node``)."""
        from workflow_traces.store.tree import build_tree

        return build_tree(self.records, self.run_id)


def _from_jobs(events: list[JobEvent]) -> tuple[str | None, int | None, int | None]:
    """(status, first start, last end) of a run from its job events, in time order."""
    open_jobs: dict[str | None, int] = {}
    statuses: dict[str | None, str] = {}
    first = last = None
    for event, time_ns, duration, job in events:
        if event == "started":
            open_jobs[job] = open_jobs.get(job, 0) + 1
            statuses[job] = "unfinished"
            first = time_ns if first is None else min(first, time_ns)
        elif event in END_EVENTS:
            if open_jobs.get(job, 0) > 0:
                open_jobs[job] -= 1
            statuses[job] = "unfinished" if open_jobs.get(job, 0) else event
            last = time_ns
            if duration is not None:  # the job's own measure of when it began
                began = time_ns - int(duration * 1e9)
                first = began if first is None else min(first, began)
    status = jobs_status(statuses.values())
    return status, first, (last if status != "unfinished" else None)


def summarize(
    run_id: str,
    parent_run_id: str | None,
    workflow_name: str | None,
    first_ns: int,
    last_ns: int,
    count: int,
    workflow_events: Iterable[WorkflowEvent],
    job_events: Iterable[JobEvent] = (),
) -> RunSummary:
    """The summary every store gives: the same rules, whatever the storage."""
    events = sorted(workflow_events, key=lambda e: e[1])
    if not events:
        jobs = sorted(job_events, key=lambda e: e[1])
        if not jobs:
            return RunSummary(
                run_id, parent_run_id, workflow_name, None, _dt(first_ns), _dt(last_ns), None, count
            )
        status, start, end = _from_jobs(jobs)
        start = start if start is not None else first_ns
        duration = (end - start) / 1e9 if end is not None else None
        return RunSummary(
            run_id, parent_run_id, workflow_name, status, _dt(start), _dt(end), duration, count
        )
    starts = [e for e in events if e[0] == "started"]
    started_ns = starts[0][1] if starts else first_ns
    last = events[-1]
    if last[0] in END_EVENTS:
        status = last[0]
        ended_ns: int | None = last[1]
        duration = last[2] if last[2] is not None else (last[1] - started_ns) / 1e9
    else:
        status, ended_ns, duration = "unfinished", None, None
    return RunSummary(
        run_id,
        parent_run_id,
        workflow_name,
        status,
        _dt(started_ns),
        _dt(ended_ns),
        duration,
        count,
    )


def summarize_records(run_id: str, records: Iterable[Record]) -> RunSummary | None:
    """The summary of a run's records, read once (None for none)."""
    parent = workflow = None
    first = last = None
    count = 0
    wf_events: list[WorkflowEvent] = []
    job_events: list[JobEvent] = []
    for r in records:
        count += 1
        if r.parent_run_id is not None and (parent is None or r.parent_run_id > parent):
            parent = r.parent_run_id
        if r.workflow_name is not None and (workflow is None or r.workflow_name > workflow):
            workflow = r.workflow_name
        first = r.time_ns if first is None or r.time_ns < first else first
        last = r.time_ns if last is None or r.time_ns > last else last
        if r.kind == "event" and r.event is not None:
            if r.scope == "workflow":
                wf_events.append((r.event, r.time_ns, r.duration))
            elif r.scope == "job":
                job_events.append((r.event, r.time_ns, r.duration, r.job_name))
    if first is None or last is None:
        return None
    return summarize(run_id, parent, workflow, first, last, count, wf_events, job_events)


def select_runs(
    summaries: Iterable[RunSummary],
    workflow: str | None = None,
    status: str | None = None,
    *,
    roots: bool = False,
    search: str | None = None,
) -> list[RunSummary]:
    """The summaries ``list_runs`` keeps for these filters, newest first."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
    runs = [
        s
        for s in summaries
        if (workflow is None or s.workflow_name == workflow)
        and (status is None or s.status == status)
        and (not roots or s.parent_run_id is None)
        and (search is None or search in s.run_id)
    ]
    runs.sort(key=lambda s: (s.started or _EPOCH, s.run_id), reverse=True)
    return runs


def child_counts(summaries: Iterable[RunSummary]) -> dict[str, int]:
    """How many child runs each parent run id has, among ``summaries``."""
    counts: dict[str, int] = {}
    for s in summaries:
        if s.parent_run_id is not None:
            counts[s.parent_run_id] = counts.get(s.parent_run_id, 0) + 1
    return counts


class _EndWatch:
    """Whether a run has ended, from its events as they arrive: its workflow scopes all closed
    after one ended; a run without workflow events, its jobs all closed after one ended."""

    def __init__(self) -> None:
        self.open = {"workflow": 0, "job": 0}
        self.closed = {"workflow": 0, "job": 0}

    def see(self, rec: Record) -> None:
        if rec.kind != "event" or rec.scope not in self.open:
            return
        if rec.event == "started":
            self.open[rec.scope] += 1
        elif rec.event in END_EVENTS:
            self.open[rec.scope] = max(0, self.open[rec.scope] - 1)
            self.closed[rec.scope] += 1

    @property
    def ended(self) -> bool:
        scope = "workflow" if self.open["workflow"] or self.closed["workflow"] else "job"
        return self.closed[scope] > 0 and self.open[scope] == 0


class Store(abc.ABC):
    """Reads runs back. Use as a context manager, or call close()."""

    #: Seconds between two looks for new records in ``follow``.
    poll_interval = 0.25

    # -- what each store implements --------------------------------------------------------------
    @abc.abstractmethod
    def _summaries(self) -> list[RunSummary]:
        """Every run's summary."""

    @abc.abstractmethod
    def _iter(
        self, run_id: str, filters: Filters, after: str | None, limit: int | None
    ) -> Iterator[Record]:
        """The run's records that pass ``filters``, in order, after the record ``after``."""

    @abc.abstractmethod
    def _poller(self, run_id: str) -> Callable[[], list[Record]]:
        """A function that returns, each call, the run's records written since its last call
        (all of them on the first), in the order they were written."""

    def _children(self, run_id: str) -> list[RunSummary]:
        return [s for s in self._summaries() if s.parent_run_id == run_id]

    def _summary(self, run_id: str) -> RunSummary | None:
        return summarize_records(run_id, self._iter(run_id, Filters(), None, None))

    # -- the interface ---------------------------------------------------------------------------
    def list_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 100,
        *,
        roots: bool = False,
        offset: int = 0,
        search: str | None = None,
    ) -> list[RunSummary]:
        """Runs, newest first: optionally only one workflow's, one status's (see STATUSES),
        runs without a parent (``roots``), or runs whose id holds ``search``; ``offset`` skips
        that many (paging)."""
        return select_runs(self._summaries(), workflow, status, roots=roots, search=search)[
            offset : offset + limit
        ]

    def summaries(self) -> list[RunSummary]:
        """Every run's summary, in no particular order (``list_runs`` sorts and filters)."""
        return self._summaries()

    def get_summary(self, run_id: str) -> RunSummary:
        """One run's summary, read without holding its records. Raises RunNotFoundError."""
        summary = self._summary(run_id)
        if summary is None:
            raise RunNotFoundError(f"run_id: no records of run {run_id!r} in {self}")
        return summary

    def child_runs(self, run_id: str) -> list[RunSummary]:
        """The runs whose parent is ``run_id``, in the order they started."""
        return sorted(self._children(run_id), key=lambda s: (s.started or _EPOCH, s.run_id))

    def get_run(self, run_id: str) -> Run:
        """One run with all its records, in order, and its child runs. Raises RunNotFoundError.
        For big runs, ``iter_records`` and ``run_tree`` read without holding every record."""
        records = list(self._iter(run_id, Filters(), None, None))
        summary = summarize_records(run_id, records)
        if summary is None:
            raise RunNotFoundError(f"run_id: no records of run {run_id!r} in {self}")
        return Run(**summary.__dict__, records=records, child_runs=self.child_runs(run_id))

    def iter_records(
        self,
        run_id: str,
        *,
        level: str | int | None = None,
        job: str | None = None,
        stage: str | None = None,
        text: str | None = None,
        since: int | float | datetime | timedelta | str | None = None,
        kind: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Record]:
        """The run's records, in order, streamed: ``level`` and above, of one ``job`` or
        ``stage``, holding ``text`` (message or exception), made at or after ``since`` (a
        datetime, a timedelta before now, epoch seconds, or "10m"), of one ``kind`` ("log" or
        "event"). ``after`` is the cursor: a record id this read gave, to go on after it;
        ``limit`` ends the read after that many. An unknown run gives nothing."""
        filters = Filters.make(level, job, stage, text, since, kind)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ConfigError(f"limit: expected a whole number >= 0, got {limit!r}")
        if limit == 0:
            return iter(())
        return self._iter(run_id, filters, after or None, limit)

    def last_records(
        self,
        run_id: str,
        n: int,
        *,
        level: str | int | None = None,
        job: str | None = None,
        stage: str | None = None,
        text: str | None = None,
        since: int | float | datetime | timedelta | str | None = None,
        kind: str | None = None,
    ) -> list[Record]:
        """The run's last ``n`` records that pass the filters (as ``iter_records``), in order."""
        filters = Filters.make(level, job, stage, text, since, kind)
        if not isinstance(n, int) or n < 0:
            raise ConfigError(f"n: expected a whole number >= 0, got {n!r}")
        return self._last(run_id, filters, n) if n else []

    def _last(self, run_id: str, filters: Filters, n: int) -> list[Record]:
        from collections import deque

        return list(deque(self._iter(run_id, filters, None, None), n))

    def follow(
        self,
        run_id: str,
        *,
        level: str | int | None = None,
        job: str | None = None,
        stage: str | None = None,
        text: str | None = None,
        since: int | float | datetime | timedelta | str | None = None,
        kind: str | None = None,
        poll_interval: float | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[Record]:
        """The run's records (filtered as ``iter_records``), those written already and then each
        as it lands, until the run ends: its workflow ended (or, without workflow events, its
        jobs all did) and a last look finds nothing more. ``stop()`` returning true ends it too.
        A run not written yet is waited for."""
        filters = Filters.make(level, job, stage, text, since, kind)
        interval = self.poll_interval if poll_interval is None else poll_interval
        poll = self._poller(run_id)
        watch = _EndWatch()
        draining = False
        while True:
            batch = poll()
            for rec in batch:
                watch.see(rec)
                if filters.matches(rec):
                    yield rec
            if watch.ended and not batch:
                if draining:
                    return
                draining = True  # one more look: records flushed just after the end event
            elif batch:
                draining = False
                continue
            if stop is not None and stop():
                return
            time.sleep(interval)

    def run_tree(self, run_id: str, *, depth: int = 8) -> Node:
        """The run as workflow → jobs → stages, from its lifecycle events only (its log lines
        are not read), with its child runs nested under the job or stage that was running when
        each started (``Node.kind == "run"``), ``depth`` levels of children deep."""
        from workflow_traces.store.tree import build_tree, nest_child

        events = list(self._iter(run_id, Filters(kind="event"), None, None))
        summary = self._summary(run_id) if not events else None
        if not events and summary is None:
            raise RunNotFoundError(f"run_id: no records of run {run_id!r} in {self}")
        root = build_tree(events, run_id)
        if not events and summary is not None:
            root.started, root.ended = summary.started, summary.ended
        if depth > 0:
            for child in self.child_runs(run_id):
                node = self.run_tree(child.run_id, depth=depth - 1)
                if not node.events and [c.kind for c in node.children] == ["job"]:
                    node.name = node.children[0].name  # a subflow: its own (job's) name
                node.kind, node.run_id = "run", child.run_id
                node.status, node.duration = child.status, child.duration
                node.started, node.ended = child.started, child.ended
                nest_child(root, node)
        return root

    # -- by trace id (issue 14) ----------------------------------------------------------------
    def _trace_run_ids(self, trace_id: str) -> list[str]:
        """The runs with records in trace ``trace_id``, the earliest first (a scan of every
        run here; stores that index the trace id override it)."""
        found = []
        for s in self._summaries():
            for rec in self.iter_records(s.run_id):
                if rec.trace_id == trace_id:
                    found.append((rec.time_ns, s.run_id))
                    break
        return [run_id for _, run_id in sorted(found)]

    def find_run_by_trace_id(self, trace_id: str) -> Run:
        """The run that opened the W3C trace ``trace_id``: the earliest of the runs whose
        records carry it (nested workflows and joined processes' child runs share their root's
        trace; they are its ``child_runs``). Raises RunNotFoundError."""
        run_ids = self._trace_run_ids(trace_id.strip().lower())
        if not run_ids:
            raise RunNotFoundError(f"trace_id: no run with trace {trace_id!r} in {self}")
        return self.get_run(run_ids[0])

    def close(self) -> None:
        """Release what the store holds."""
        return None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
