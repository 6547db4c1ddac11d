"""The read side: one interface over the SQLite database and the file sink's folders.

``open_store(location)`` takes a SQLite file, a file-sink folder or (with the elasticsearch
extra) an ``http(s)://`` URL, and answers ``list_runs`` and ``get_run`` the same way for each.
"""

from __future__ import annotations

import abc
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from workflow_traces.core.record import _EPOCH, Record
from workflow_traces.errors import ConfigError, RunNotFoundError
from workflow_traces.exporters.encode import record_from_dict

if TYPE_CHECKING:
    from workflow_traces.store.tree import Node

__all__ = ["Run", "RunSummary", "Store", "open_store"]

_END_EVENTS = ("succeeded", "failed", "skipped", "cancelled")


def _dt(time_ns: int | None) -> datetime | None:
    if time_ns is None:
        return None
    from datetime import timedelta

    return _EPOCH + timedelta(microseconds=time_ns // 1000)


@dataclass(frozen=True)
class RunSummary:
    """One run, as ``list_runs`` gives it.

    ``status`` is the last workflow lifecycle event's ("succeeded", "failed", "skipped",
    "cancelled"), "unfinished" when the workflow started and never ended, and None when the run
    has no lifecycle events. ``started`` and ``ended`` come from those events, or else from the
    first and last records.
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


def summarize(
    run_id: str,
    parent_run_id: str | None,
    workflow_name: str | None,
    first_ns: int,
    last_ns: int,
    count: int,
    workflow_events: Iterable[tuple[str, int, float | None]],
) -> RunSummary:
    """The summary both stores give: the same rules, whatever the storage."""
    events = sorted(workflow_events, key=lambda e: e[1])
    if not events:
        return RunSummary(
            run_id, parent_run_id, workflow_name, None, _dt(first_ns), _dt(last_ns), None, count
        )
    starts = [e for e in events if e[0] == "started"]
    ends = [e for e in events if e[0] in _END_EVENTS]
    started_ns = starts[0][1] if starts else first_ns
    last = events[-1]
    if last[0] in _END_EVENTS:
        status = last[0]
        ended_ns: int | None = last[1]
        duration = last[2] if last[2] is not None else (last[1] - started_ns) / 1e9
    else:
        status, ended_ns, duration = "unfinished", None, None
    del ends
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


def summarize_records(run_id: str, records: list[Record]) -> RunSummary:
    parents = [r.parent_run_id for r in records if r.parent_run_id is not None]
    workflows = [r.workflow_name for r in records if r.workflow_name is not None]
    events = [
        (r.event, r.time_ns, r.duration)
        for r in records
        if r.kind == "event" and r.scope == "workflow" and r.event is not None
    ]
    return summarize(
        run_id,
        max(parents) if parents else None,
        max(workflows) if workflows else None,
        min(r.time_ns for r in records),
        max(r.time_ns for r in records),
        len(records),
        events,
    )


class Store(abc.ABC):
    """Reads runs back. Use as a context manager, or call close()."""

    @abc.abstractmethod
    def _summaries(self) -> list[RunSummary]:
        """Every run's summary."""

    @abc.abstractmethod
    def _records(self, run_id: str) -> list[Record]:
        """One run's records in order; empty if none."""

    def _children(self, run_id: str) -> list[RunSummary]:
        return [s for s in self._summaries() if s.parent_run_id == run_id]

    def list_runs(
        self, workflow: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[RunSummary]:
        """Runs, newest first, optionally only those of one workflow or with one status."""
        runs = [
            s
            for s in self._summaries()
            if (workflow is None or s.workflow_name == workflow)
            and (status is None or s.status == status)
        ]
        runs.sort(key=lambda s: (s.started or _EPOCH, s.run_id), reverse=True)
        return runs[:limit]

    def get_run(self, run_id: str) -> Run:
        """One run with its records, in order, and its child runs. Raises RunNotFoundError."""
        records = self._records(run_id)
        if not records:
            raise RunNotFoundError(f"run_id: no records of run {run_id!r} in {self}")
        summary = summarize_records(run_id, records)
        children = sorted(self._children(run_id), key=lambda s: (s.started or _EPOCH, s.run_id))
        return Run(**summary.__dict__, records=records, child_runs=children)

    # -- by trace id (issue 14): a separate addition, kept apart from the rest of the store --
    def _trace_run_ids(self, trace_id: str) -> list[str]:
        """The runs with records in trace ``trace_id``, the earliest first (a slow scan here;
        stores that index the trace id override it)."""
        found = []
        for s in self._summaries():
            records = [r for r in self._records(s.run_id) if r.trace_id == trace_id]
            if records:
                found.append((records[0].time_ns, s.run_id))
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


_SELECT = "SELECT {} FROM trace_records"
_SUMMARY = (
    "SELECT run_id, MAX(parent_run_id), MAX(workflow_name), MIN(time_ns), MAX(time_ns), COUNT(*)"
    " FROM traces {} GROUP BY run_id"
)
_SUMMARY_SQL = {
    "all": _SUMMARY.format(""),
    "children": _SUMMARY.format(
        "WHERE run_id IN (SELECT DISTINCT run_id FROM traces"
        " WHERE parent_run_id = ? AND parent_run_id != '')"
    ),
}


class SQLiteStore(Store):
    """Reads the SQLite sink's database (read-only)."""

    def __init__(self, path: Path) -> None:
        from workflow_traces.exporters.sqlite.schema import COLUMNS

        self.path = path
        self._columns: tuple[str, ...] = COLUMNS
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, timeout=30.0)

    def _has_table(self) -> bool:
        # A database the sink created but has not written to yet holds no table: no runs.
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'trace_records'"
        ).fetchone()
        return row is not None

    def __str__(self) -> str:
        return f"sqlite:{self.path}"

    def _to_record(self, row: tuple[Any, ...]) -> Record:
        # Version 1 databases stored missing text as "": read it back as None.
        d = {k: (None if v == "" else v) for k, v in zip(self._columns, row, strict=True)}
        d["is_err"] = bool(d["is_err"])
        if d["lineno"] == 0:
            d["lineno"] = None
        if d["extras"] is not None:
            d["extras"] = orjson.loads(d["extras"])
        return record_from_dict(d)

    def _view_columns(self) -> tuple[str, ...]:
        """COLUMNS that this database's view has: a database of an older version (read-only
        here, so not migrated) lacks the newer ones, which read back as None."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(trace_records)")}
        self._columns = tuple(c for c in self._columns if c in have)
        return self._columns

    def _records(self, run_id: str) -> list[Record]:
        if not self._has_table():
            return []
        cols = ", ".join(self._view_columns())
        rows = self._conn.execute(
            _SELECT.format(cols) + " WHERE run_id = ? ORDER BY time_ns, seq", (run_id,)
        ).fetchall()
        return [self._to_record(row) for row in rows]

    def _trace_run_ids(self, trace_id: str) -> list[str]:
        if not self._has_table() or "trace_id" not in self._view_columns():
            return []
        rows = self._conn.execute(
            "SELECT run_id, MIN(time_ns) FROM traces WHERE trace_id = ? AND trace_id != ''"
            " GROUP BY run_id ORDER BY 2, 1",
            (trace_id,),
        ).fetchall()
        return [row[0] for row in rows]

    def _summary_rows(self, where: str = "all", args: tuple[Any, ...] = ()) -> list[RunSummary]:
        if not self._has_table():
            return []
        rows = self._conn.execute(_SUMMARY_SQL[where], args).fetchall()
        events: dict[str, list[tuple[str, int, float | None]]] = {}
        for run_id, event, time_ns, duration in self._conn.execute(
            "SELECT run_id, event, time_ns, duration FROM trace_records"
            " WHERE kind = 'event' AND scope = 'workflow' ORDER BY time_ns, seq"
        ):
            events.setdefault(run_id, []).append((event, time_ns, duration))
        return [
            summarize(
                run_id, parent or None, workflow or None, first, last, count, events.get(run_id, [])
            )
            for run_id, parent, workflow, first, last, count in rows
        ]

    def _summaries(self) -> list[RunSummary]:
        return self._summary_rows()

    def _children(self, run_id: str) -> list[RunSummary]:
        return self._summary_rows("children", (run_id,))

    def close(self) -> None:
        self._conn.close()


class FileStore(Store):
    """Reads the file sink's per-run folders."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def __str__(self) -> str:
        return f"file:{self.base}"

    def _run_ids(self) -> list[str]:
        from workflow_traces.exporters.file import run_id_from_dir

        ids = []
        for entry in os.scandir(self.base):
            run_id = run_id_from_dir(entry) if entry.is_dir() else None
            if run_id is not None:
                ids.append(run_id)
        return ids

    def _records(self, run_id: str) -> list[Record]:
        from workflow_traces.exporters.file import RECORDS_FILE, read_records, run_dir

        path = run_dir(self.base, run_id) / RECORDS_FILE
        if not path.is_file():
            return []
        seen: set[str] = set()
        records = []
        for rec in read_records(path):
            if rec.record_id not in seen:  # a batch written twice keeps one copy
                seen.add(rec.record_id)
                records.append(rec)
        records.sort(key=lambda r: r.time_ns)
        return records

    def _summaries(self) -> list[RunSummary]:
        out = []
        for run_id in self._run_ids():
            records = self._records(run_id)
            if records:
                out.append(summarize_records(run_id, records))
        return out


def open_store(location: str | os.PathLike[str]) -> Store:
    """A store over a SQLite database file, a file-sink folder, an Elasticsearch URL, or an
    OpenSearch URL (``opensearch+https://host:9200/index``)."""
    text = os.fspath(location)
    if text.startswith(("http://", "https://", "opensearch+http://", "opensearch+https://")):
        try:
            from workflow_traces.store.elasticsearch import ElasticsearchStore
        except ImportError as exc:
            raise ConfigError(
                f"location: reading {text!r} needs the elasticsearch extra ({exc})"
            ) from None
        return ElasticsearchStore.from_url(text)
    path = Path(text)
    if path.is_dir():
        return FileStore(path)
    if path.is_file():
        with open(path, "rb") as fh:
            magic = fh.read(16)
        if magic.startswith(b"SQLite format 3"):
            return SQLiteStore(path)
        raise ConfigError(f"location: {text!r} is neither a SQLite database nor a folder")
    raise ConfigError(f"location: {text!r} does not exist")
