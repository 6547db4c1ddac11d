"""One fast pass over a run's ``traces.jsonl``: its summary and its lifecycle events.

The file store's summary (count, times, parent, workflow, status) and tree (the events) come
from this pass, which keeps the per-record work in C: each line is parsed by orjson and kept as
its list of values, and every few thousand lines the list is read column-wise (``map`` with
``itemgetter``, ``min``/``max``, set operations for the repeated-batch check). Only event lines
become Records. The result is the same as reading every record (``summarize_records``): the
same lines skipped (cut short), the same copies of a batch written twice dropped (ids seen
within the last ``DEDUP_WINDOW`` records at least). A file in another layout (other header
fields, odd lines) gives None: the caller then reads it record by record.
"""

from __future__ import annotations

from collections import deque
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from workflow_traces.core.record import (
    F_KIND,
    F_PARENT_RUN_ID,
    F_RECORD_ID,
    F_TIME_NS,
    F_WORKFLOW_NAME,
    Record,
)
from workflow_traces.exporters.file import RECORD_FIELDS
from workflow_traces.store.base import JobEvent, RunSummary, WorkflowEvent, summarize

__all__ = ["DEDUP_WINDOW", "scan_run"]

#: How many of the latest record ids a read remembers to drop a batch written twice.
DEDUP_WINDOW = 100_000
#: Bytes of lines read and parsed at a time.
_BLOCK = 1 << 18
_N = len(RECORD_FIELDS)
_times = itemgetter(F_TIME_NS)
_parents = itemgetter(F_PARENT_RUN_ID)
_workflows = itemgetter(F_WORKFLOW_NAME)
_ids = itemgetter(F_RECORD_ID)
#: Distinct record id prefixes get disjoint ranges of int keys (counters stay below 2**70).
_PREFIX_SHIFT = 70


class _Window:
    """The keys of the latest ``DEDUP_WINDOW`` (or a little more) records kept."""

    def __init__(self) -> None:
        self.keys: set[Any] = set()
        self.chunks: deque[list[Any]] = deque()
        self.size = 0

    def keep(self, keys: list[Any]) -> list[bool] | None:
        """None when every key is new (the usual case), else which keys to keep: the first
        copy of each, and none already seen."""
        fresh = set(keys)
        if len(fresh) == len(keys) and self.keys.isdisjoint(fresh):
            self._add(keys)
            return None
        kept: list[Any] = []
        flags = []
        seen = set()
        for key in keys:
            new = key not in self.keys and key not in seen
            flags.append(new)
            if new:
                seen.add(key)
                kept.append(key)
        self._add(kept)
        return flags

    def _add(self, keys: list[Any]) -> None:
        self.keys.update(keys)
        self.chunks.append(keys)
        self.size += len(keys)
        while self.chunks and self.size - len(self.chunks[0]) >= DEDUP_WINDOW:
            old = self.chunks.popleft()
            self.keys.difference_update(old)
            self.size -= len(old)


class _Pass:
    __slots__ = (
        "base",
        "count",
        "events",
        "first",
        "last",
        "parent",
        "prefix",
        "prefixes",
        "window",
        "workflow",
    )

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.parent: str | None = None
        self.workflow: str | None = None
        self.events: list[Record] = []
        self.prefix = ""
        self.prefixes: dict[str, int] = {"": 0}
        self.base = 0
        self.window = _Window()

    def set_prefix(self, prefix: str) -> None:
        self.prefix = prefix
        self.base = self.prefixes.setdefault(prefix, len(self.prefixes)) << _PREFIX_SHIFT

    def take(self, rows: list[list[Any]]) -> None:
        """Count a chunk of record lines (all under the current id prefix)."""
        base = self.base
        keys = list(map(_ids, rows))
        if {*map(type, keys)} == {int}:  # the usual chunk: numbered ids, one prefix
            keys = list(map(base.__add__, keys))
        else:
            keys = [k + base if type(k) is int else k for k in keys]
        flags = self.window.keep(keys)
        if flags is not None:
            rows = [row for row, keep in zip(rows, flags, strict=True) if keep]
            if not rows:
                return
        self.count += len(rows)
        times = list(map(_times, rows))
        low, high = min(times), max(times)
        self.first = low if self.first is None or low < self.first else self.first
        self.last = high if self.last is None or high > self.last else self.last
        self.parent = _top(self.parent, map(_parents, rows))
        self.workflow = _top(self.workflow, map(_workflows, rows))
        prefix = self.prefix
        for row in rows:
            if row[F_KIND] == "event":
                if type(row[F_RECORD_ID]) is int:
                    row[F_RECORD_ID] = prefix + str(row[F_RECORD_ID])
                self.events.append(Record(*row, size=256))  # type: ignore[misc]


def _top(best: str | None, values: Any) -> str | None:
    """The greatest of ``best`` and the values that are not None."""
    found = set(values)
    found.discard(None)
    if not found:
        return best
    top = max(found)
    return top if best is None or top > best else best


def _loads_or_none(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _rows(state: _Pass, rows: list[Any]) -> bool:
    if not rows:
        return True
    if {*map(len, rows)} != {_N}:
        return False
    state.take(rows)
    return True


def _block(state: _Pass, values: list[Any]) -> bool:
    """Take a block of parsed lines; False when one is not of this layout."""
    if {*map(type, values)} == {list}:  # record lines only
        return _rows(state, values)
    start = 0
    for i, kind in enumerate(map(type, values)):
        if kind is list:
            continue
        if not _rows(state, values[start:i]):
            return False
        start = i + 1
        value = values[i]
        if kind is dict and "id_prefix" in value:
            state.set_prefix(str(value["id_prefix"]))
        elif kind is dict and "fields" in value:
            return False  # a second header: read record by record
        # other lines (cut short, or not a record) are skipped, as record by record
    return _rows(state, values[start:])


def scan_run(run_id: str, path: Path) -> tuple[RunSummary | None, list[Record]] | None:
    """(summary, lifecycle events in file order) of the run in ``path`` (version 1 or 2); None
    when the file is not in this layout (other header fields, a second header, an odd line)."""
    state = _Pass()
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    try:
        with open(path, "rb") as fh:
            header = fh.readline()
            try:
                value = loads(header)
            except decode_error:
                return None
            if not isinstance(value, dict) or value.get("fields") != list(RECORD_FIELDS):
                return None
            while True:
                lines = fh.readlines(_BLOCK)
                if not lines:
                    break
                try:
                    values = list(map(loads, lines))
                except decode_error:  # a line cut short in the block: skipped, as record by record
                    values = list(map(_loads_or_none, lines))
                if not _block(state, values):
                    return None
    except (OSError, ValueError, TypeError):
        return None
    if state.first is None or state.last is None:
        return None, []
    wf_events: list[WorkflowEvent] = []
    job_events: list[JobEvent] = []
    for r in state.events:
        if r.event is None:
            continue
        if r.scope == "workflow":
            wf_events.append((r.event, r.time_ns, r.duration))
        elif r.scope == "job":
            job_events.append((r.event, r.time_ns, r.duration, r.job_name))
    summary = summarize(
        run_id,
        state.parent,
        state.workflow,
        state.first,
        state.last,
        state.count,
        wf_events,
        job_events,
    )
    return summary, state.events
