"""Reading the file sink's folders: each run's ``traces.jsonl`` streamed line by line.

Records come in the order they were written (each batch in time order; batches of several
processes one after another). Both file versions are read: version 1 lines hold whole record
ids, version 2 lines a number whose prefix the latest ``{"id_prefix": ...}`` line gives. A line
that does not parse (cut short by SIGKILL) is skipped; a batch written twice keeps one copy (the
last ``DEDUP_WINDOW`` ids are remembered). A cursor (a record id) resumes at the byte offset
after that record when this store gave it recently, else by reading up to it. A run's summary
and its lifecycle events (what the tree is built from) come from one pass that keeps the
per-record work in C (see ``jsonl_scan``), and are kept while the file's size and modification
time stay the same.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from workflow_traces.core.record import Record
from workflow_traces.exporters.file import (
    RECORD_FIELDS,
    RECORDS_FILE,
    _from_values,
    run_dir,
    run_id_from_dir,
)
from workflow_traces.store.base import RunSummary, Store, summarize_records
from workflow_traces.store.jsonl_scan import DEDUP_WINDOW, scan_run
from workflow_traces.store.query import Filters

__all__ = ["DEDUP_WINDOW", "FileStore"]

_MARKS = 4096


class _Lines:
    """The parser's state through one traces.jsonl: the header's fields and the id prefix."""

    __slots__ = ("at", "fields", "prefix")

    def __init__(self, prefix: str = "") -> None:
        self.fields: tuple[str, ...] = RECORD_FIELDS
        self.at: int | None = RECORD_FIELDS.index("record_id")
        self.prefix = prefix

    def header(self, fh: BinaryIO) -> None:
        """Read the header line's fields (the file's first line), wherever ``fh`` is."""
        where = fh.tell()
        fh.seek(0)
        self.parse(fh.readline())
        fh.seek(where)

    def parse(self, line: bytes) -> Record | None:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if isinstance(value, list):
            try:
                at = self.at
                if at is not None and type(value[at]) is int:
                    value[at] = self.prefix + str(value[at])
                return _from_values(self.fields, value)
            except (TypeError, ValueError, IndexError):
                return None
        if isinstance(value, dict):
            if "id_prefix" in value:
                self.prefix = str(value["id_prefix"])
            elif "fields" in value:
                self.fields = tuple(value["fields"])
                self.at = self.fields.index("record_id") if "record_id" in self.fields else None
        return None


class _Dedup:
    __slots__ = ("ids", "order")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.order: deque[str] = deque()

    def new(self, record_id: str) -> bool:
        if record_id in self.ids:
            return False
        self.ids.add(record_id)
        self.order.append(record_id)
        if len(self.order) > DEDUP_WINDOW:
            self.ids.discard(self.order.popleft())
        return True


class FileStore(Store):
    """Reads the file sink's per-run folders."""

    def __init__(self, base: Path) -> None:
        self.base = base
        # (run_id, record_id) -> (byte offset after that record's line, id prefix there)
        self._marks: OrderedDict[tuple[str, str], tuple[int, str]] = OrderedDict()
        # run_id -> ((size, mtime), summary, lifecycle events)
        self._scans: dict[str, tuple[tuple[int, int], RunSummary | None, list[Record]]] = {}

    def __str__(self) -> str:
        return f"file:{self.base}"

    def _path(self, run_id: str) -> Path:
        return run_dir(self.base, run_id) / RECORDS_FILE

    def _run_ids(self) -> list[str]:
        ids = []
        for entry in os.scandir(self.base):
            run_id = run_id_from_dir(entry) if entry.is_dir() else None
            if run_id is not None:
                ids.append(run_id)
        return ids

    def _mark(self, run_id: str, record_id: str, offset: int, prefix: str) -> None:
        self._marks[(run_id, record_id)] = (offset, prefix)
        while len(self._marks) > _MARKS:
            self._marks.popitem(last=False)

    def _iter(
        self, run_id: str, filters: Filters, after: str | None, limit: int | None
    ) -> Iterator[Record]:
        if filters.kind == "event" and after is None and limit is None:
            scanned = self._scan(run_id)
            if scanned is not None:  # the events the summary's pass kept
                yield from filter(filters.matches, scanned[1])
                return
        yield from self._read(run_id, filters, after, limit)

    def _read(
        self, run_id: str, filters: Filters, after: str | None, limit: int | None
    ) -> Iterator[Record]:
        try:
            path = self._path(run_id)
            fh = open(path, "rb")  # noqa: SIM115 - closed in the finally below
        except (OSError, ValueError):
            return
        lines = _Lines()
        offset = 0
        last: Record | None = None
        try:
            skipping = after is not None
            mark = self._marks.get((run_id, after)) if after is not None else None
            if mark is not None:
                offset, lines.prefix = mark
                lines.header(fh)
                fh.seek(offset)
                skipping = False
            seen = _Dedup()
            matches = None if filters.empty else filters.matches
            given = 0
            parse = lines.parse
            events_only = filters.kind == "event"
            for line in fh:
                offset += len(line)
                # An event's line holds "event" (its kind): the others need no parsing. Lines
                # of objects (the header, id prefixes) are always read.
                if events_only and b'"event"' not in line and not line.startswith(b"{"):
                    continue
                rec = parse(line)
                if rec is None or not seen.new(rec.record_id):
                    continue
                if skipping:
                    skipping = rec.record_id != after
                    continue
                if matches is not None and not matches(rec):
                    continue
                last = rec
                yield rec
                given += 1
                if limit is not None and given >= limit:
                    return
        finally:
            if last is not None:
                self._mark(run_id, last.record_id, offset, lines.prefix)
            fh.close()

    def _poller(self, run_id: str) -> Callable[[], list[Record]]:
        state: dict[str, Any] = {"offset": 0, "lines": _Lines(), "seen": _Dedup()}

        def poll() -> list[Record]:
            try:
                fh = open(self._path(run_id), "rb")  # noqa: SIM115 - closed below
            except (OSError, ValueError):
                return []
            out: list[Record] = []
            lines: _Lines = state["lines"]
            with fh:
                fh.seek(state["offset"])
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # a line still being written: read it whole next time
                    state["offset"] += len(line)
                    rec = lines.parse(line)
                    if rec is not None and state["seen"].new(rec.record_id):
                        out.append(rec)
            return out

        return poll

    def _scan(self, run_id: str) -> tuple[RunSummary | None, list[Record]] | None:
        """(summary, lifecycle events) of the run, kept while its file's size and time stay;
        None when it has no file."""
        try:
            st = os.stat(self._path(run_id))
        except (OSError, ValueError):
            return None
        key = (st.st_size, st.st_mtime_ns)
        cached = self._scans.get(run_id)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        scanned = scan_run(run_id, self._path(run_id))
        if scanned is None:  # another layout (other header fields, odd lines): record by record
            summary = summarize_records(run_id, self._read(run_id, Filters(), None, None))
            events = list(self._read(run_id, Filters(kind="event"), None, None))
            scanned = (summary, events)
        self._scans[run_id] = (key, *scanned)
        return scanned

    def _summary(self, run_id: str) -> RunSummary | None:
        scanned = self._scan(run_id)
        return scanned[0] if scanned is not None else None

    def _first_parent(self, run_id: str) -> str | None:
        """The parent run id of the run's first record (a run's records share it)."""
        for rec in self._read(run_id, Filters(), None, 1):
            return rec.parent_run_id
        return None

    def _children(self, run_id: str) -> list[RunSummary]:
        # Each run's first record says whose child it is: only the children are read whole.
        out = []
        for child in self._run_ids():
            if child != run_id and self._first_parent(child) == run_id:
                summary = self._summary(child)
                if summary is not None and summary.parent_run_id == run_id:
                    out.append(summary)
        return out

    def _summaries(self) -> list[RunSummary]:
        out = []
        for run_id in self._run_ids():
            summary = self._summary(run_id)
            if summary is not None:
                out.append(summary)
        return out
