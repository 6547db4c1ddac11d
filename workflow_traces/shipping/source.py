"""Streaming reads of a local trace for ``ship``: SQLite rows in pages by ``seq`` (the rowid),
and the file sink's ``traces.jsonl`` line by line (both of its versions).

A source yields batches of records with the **positions** they reach: for a SQLite database,
the ``seq`` of the last row read (per run, and ``"*"`` for "every row up to here" when all runs
are shipped); for a folder, the byte offset after the last line read in each run's file. The
shipper stores the positions once a batch is delivered, and a later ship starts after them.

``seq`` is an INTEGER PRIMARY KEY without AUTOINCREMENT: once ``prune`` (or anyone) removes
the newest rows, SQLite gives their numbers to the next rows written. So a SQLite batch also
names the record id of the row at each position it reaches, the checkpoint keeps them as marks,
and ``verify`` checks them before a ship resumes: a row that still holds its mark's id proves
that every row at or below it is one that was there when the ship passed it (new rows are only
numbered above the highest row left). A position whose row no longer holds the id goes back to
the highest mark that still holds (or to the start): the old rows above that mark are sent
once more, with their ids: SQLite keeps one copy (its unique ``record_id`` index), so do
Elasticsearch/OpenSearch (``_id`` is the record id); a folder holds the line twice and its
reader shows one; a REST service that does not dedupe by id receives them twice.

What cannot be read is skipped and described in ``problems`` (the file, and the line or the
table and row): the records that can be read still go.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from workflow_traces.core.record import F_RECORD_ID, Record
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.encode import record_from_dict

__all__ = ["ALL", "FileSource", "Problem", "SQLiteSource", "Source", "open_source"]

#: The position key meaning "every row up to this one" (SQLite, when no run is selected).
ALL = "*"
_loads = orjson.loads
_RAW = (
    "SELECT seq, record_id, time_ns, levelno, message, run_id, parent_run_id, workflow_name,"
    " kind, detail{ids} FROM traces WHERE seq > ?{where} ORDER BY seq LIMIT ?"
)
#: Above this many selected runs, rows are filtered in Python rather than with ``IN (...)``.
_MAX_IN = 500


@dataclass(frozen=True)
class Problem:
    """Something in the source that could not be read: ``where`` names the file and the line
    or the table and row."""

    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why}"


#: Records, the positions they reach, and (SQLite) the record id of the row at each position.
Batch = tuple[list[Record], dict[str, int], dict[str, str]]


class Source:
    """A local trace to ship from."""

    path: Path
    problems: list[Problem]

    def select(
        self, runs: Iterable[str] = (), workflow: str | None = None, since_ns: int | None = None
    ) -> list[str] | None:
        """The run ids to ship (None: every run), by run id, workflow name and start time."""
        raise NotImplementedError

    def pending(self, positions: dict[str, int], selected: list[str] | None) -> int:
        """About how many records are left to ship (for the progress bar)."""
        raise NotImplementedError

    def verify(self, positions: dict[str, int], marks: dict[str, list[list[Any]]]) -> int:
        """Move back each position whose mark no longer holds (see the module's text), in
        place; how many moved. Positions without marks (older checkpoints) are trusted."""
        return 0

    def batches(
        self, positions: dict[str, int], selected: list[str] | None, size: int
    ) -> Iterator[Batch]:
        """Batches of at most ``size`` records after ``positions``, each with the positions it
        reaches. The last batch may be empty (positions moved past unreadable lines only)."""
        raise NotImplementedError

    def close(self) -> None:
        return None

    def __str__(self) -> str:
        return str(self.path)


def _size(message: str, rest: int) -> int:
    return max(256, 64 + len(message) + rest)


class SQLiteSource(Source):
    """The SQLite sink's database, read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems = []
        uri = path.resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, timeout=30.0)
        try:
            names = {
                row[0]: row[1] for row in self._conn.execute("SELECT name, type FROM sqlite_master")
            }
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(traces)")}
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ConfigError(f"{path}: cannot be read as a SQLite database: {exc}") from None
        from workflow_traces.exporters.sqlite.schema import COLUMNS, INSERT_COLUMNS

        view = {row[1] for row in self._conn.execute("PRAGMA table_info(trace_records)")}
        # A database of an older version (read-only here, not migrated) lacks the newer
        # columns, which read back as None.
        self._columns = tuple(c for c in COLUMNS if c in view)
        if names.get("traces") != "table" or names.get("trace_records") != "view":
            self._conn.close()
            found = ", ".join(sorted(n for n, t in names.items() if t == "table")) or "none"
            raise ConfigError(
                f"{path}: table traces: not found, this is not a workflow-traces database "
                f"(its tables: {found})"
            )
        #: Version 2 rows are read straight from ``traces`` (the view's json_extract per field
        #: costs ten times as much); version 1 through the view.
        self._ids = {"trace_id", "span_id"} <= columns  # version 3's W3C ids
        core = set(INSERT_COLUMNS) - {"trace_id", "span_id"}
        self._raw = version >= 2 and core <= columns
        self._rid = 1 if self._raw else 1 + self._columns.index("record_id")

    def select(
        self, runs: Iterable[str] = (), workflow: str | None = None, since_ns: int | None = None
    ) -> list[str] | None:
        wanted = list(dict.fromkeys(runs))
        if workflow is None and since_ns is None:
            return wanted or None
        having: list[str] = []
        args: list[Any] = []
        if workflow is not None:
            having.append("MAX(COALESCE(workflow_name, '')) = ?")
            args.append(workflow)
        if since_ns is not None:
            having.append("MIN(time_ns) >= ?")
            args.append(since_ns)
        sql = (
            "SELECT run_id FROM trace_records GROUP BY run_id HAVING "  # noqa: S608 - fixed text
            + " AND ".join(having)
            + " ORDER BY MIN(seq)"
        )
        found = [row[0] for row in self._conn.execute(sql, args)]
        return [r for r in found if r in set(wanted)] if wanted else found

    def _filter(self, selected: list[str] | None) -> tuple[str, list[Any], set[str] | None]:
        if selected is None:
            return "", [], None
        if len(selected) <= _MAX_IN:
            return f" AND run_id IN ({','.join('?' * len(selected))})", list(selected), None
        return "", [], set(selected)

    def _start(self, positions: dict[str, int], selected: list[str] | None) -> int:
        floor = positions.get(ALL, 0)
        if selected is None:
            return floor
        return max(floor, min((positions.get(r, 0) for r in selected), default=floor))

    def verify(self, positions: dict[str, int], marks: dict[str, list[list[Any]]]) -> int:
        moved = 0
        check = "SELECT 1 FROM trace_records WHERE seq = ? AND record_id = ?"
        for key, pos in list(positions.items()):
            anchors = marks.get(key)
            if not anchors:
                continue
            good = 0
            for seq, record_id in reversed(anchors):
                if seq <= pos and self._conn.execute(check, (seq, record_id)).fetchone():
                    good = seq
                    break
            if good == pos:
                continue
            moved += 1
            marks[key] = [a for a in anchors if a[0] <= good]
            if good:
                positions[key] = good
            else:
                del positions[key]
        return moved

    def pending(self, positions: dict[str, int], selected: list[str] | None) -> int:
        if selected == []:
            return 0
        where, args, _ = self._filter(selected)
        sql = "SELECT COUNT(*) FROM traces WHERE seq > ?" + where  # noqa: S608 - fixed text
        return int(self._conn.execute(sql, [self._start(positions, selected), *args]).fetchone()[0])

    def batches(
        self, positions: dict[str, int], selected: list[str] | None, size: int
    ) -> Iterator[Batch]:
        if selected == []:
            return
        where, args, keep = self._filter(selected)
        floor = positions.get(ALL, 0)
        done = {r: p for r, p in positions.items() if r != ALL and p > floor}
        cursor = self._start(positions, selected)
        ids = ", trace_id, span_id" if self._ids else ""
        sql = _RAW.format(ids=ids, where=where) if self._raw else self._view_sql(where)
        to_record = self._raw_record if self._raw else self._view_record
        while True:
            try:
                rows = self._conn.execute(sql, [cursor, *args, size]).fetchall()
            except sqlite3.DatabaseError as exc:  # a damaged page: what came before still went
                where = f"{self.path}: table traces, rows after seq={cursor}"
                self.problems.append(Problem(where, f"cannot be read ({exc})"))
                return
            if not rows:
                return
            records: list[Record] = []
            moved: dict[str, int] = {}
            marks: dict[str, str] = {}
            rid = self._rid
            for row in rows:
                seq, run_id = row[0], row[5]
                if (keep is not None and run_id not in keep) or seq <= done.get(run_id, floor):
                    continue
                rec = to_record(row)
                if rec is not None:
                    records.append(rec)
                if selected is not None:
                    moved[run_id] = seq
                    marks[run_id] = row[rid]
            cursor = rows[-1][0]
            if selected is None:
                moved[ALL] = cursor
                marks[ALL] = rows[-1][rid]
            yield records, moved, marks

    def _raw_record(self, row: tuple[Any, ...]) -> Record | None:
        seq, rid, time_ns, levelno, message, run_id, parent, workflow, kind, detail, *ids = row
        trace_id, span_id = ids or ("", "")
        try:
            (
                level, job, stage, scope, event, status, duration, is_err, filename, lineno,
                func, process, thread, host, logger, exc_type, exc_message, exc_tb, extras,
            ) = _loads(detail)  # fmt: skip
            return Record(
                time_ns, level, levelno, message, run_id, parent or None, workflow or None,
                job, stage, filename, lineno, func, process, thread, host, rid, bool(is_err),
                extras, exc_type, exc_message, exc_tb, kind, scope, event, status, duration,
                logger, trace_id or None, span_id or None, _size(message, len(detail)),
            )  # fmt: skip
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            self.problems.append(
                Problem(f"{self.path}: table traces, row seq={seq}", f"unreadable detail ({exc})")
            )
            return None

    def _view_sql(self, where: str) -> str:
        cols = ", ".join(self._columns)
        return (
            f"SELECT seq, {cols} FROM trace_records WHERE seq > ?{where}"  # noqa: S608
            " ORDER BY seq LIMIT ?"
        )

    def _view_record(self, row: tuple[Any, ...]) -> Record | None:
        # Version 1 stored missing text as "": read it back as None.
        d = {k: (None if v == "" else v) for k, v in zip(self._columns, row[1:], strict=True)}
        try:
            d["is_err"] = bool(d["is_err"])
            if d["lineno"] == 0:
                d["lineno"] = None
            if d["extras"] is not None:
                d["extras"] = _loads(d["extras"])
            return record_from_dict(d)
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            self.problems.append(
                Problem(f"{self.path}: table traces, row seq={row[0]}", f"unreadable ({exc})")
            )
            return None

    def close(self) -> None:
        self._conn.close()


class FileSource(Source):
    """The file sink's folder: one ``traces.jsonl`` per run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems = []

    def _runs(self) -> dict[str, Path]:
        from workflow_traces.exporters.file import RECORDS_FILE, run_id_from_dir

        found: dict[str, Path] = {}
        for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
            if not entry.is_dir():
                continue
            run_id = run_id_from_dir(entry)
            if run_id is not None and os.path.isfile(os.path.join(entry.path, RECORDS_FILE)):
                found[run_id] = Path(entry.path) / RECORDS_FILE
        return found

    def select(
        self, runs: Iterable[str] = (), workflow: str | None = None, since_ns: int | None = None
    ) -> list[str] | None:
        wanted = list(dict.fromkeys(runs))
        if workflow is None and since_ns is None:
            return wanted or None
        out = []
        for run_id, file in self._runs().items():
            if wanted and run_id not in wanted:
                continue
            rec = next((r for r, _ in self._read(file, 0, quiet=True) if r is not None), None)
            if rec is None:
                continue
            if workflow is not None and rec.workflow_name != workflow:
                continue
            if since_ns is not None and rec.time_ns < since_ns:
                continue
            out.append(run_id)
        return out

    def _files(self, selected: list[str] | None) -> dict[str, Path]:
        runs = self._runs()
        if selected is None:
            return runs
        return {r: runs[r] for r in selected if r in runs}

    def pending(self, positions: dict[str, int], selected: list[str] | None) -> int:
        total = 0
        for run_id, file in self._files(selected).items():
            with open(file, "rb") as fh:
                start = positions.get(run_id, 0)
                fh.seek(start if start <= file.stat().st_size else 0)
                total += sum(1 for line in fh if line.startswith(b"["))
        return total

    def batches(
        self, positions: dict[str, int], selected: list[str] | None, size: int
    ) -> Iterator[Batch]:
        records: list[Record] = []
        moved: dict[str, int] = {}
        for run_id, file in self._files(selected).items():
            start = positions.get(run_id, 0)
            if start > file.stat().st_size:  # the run's file was removed and begun again
                start = 0
            for rec, offset in self._read(file, start):
                if rec is not None:
                    records.append(rec)
                moved[run_id] = offset
                if len(records) >= size:
                    yield records, moved, {}
                    records, moved = [], {}
        if records or moved:
            yield records, moved, {}

    def _read(
        self, path: Path, start: int, quiet: bool = False
    ) -> Iterator[tuple[Record | None, int]]:
        """(record, offset after its line) for each line after ``start``; (None, offset) for a
        line that cannot be read, which is described in ``problems``. A last line cut short
        (no end of line) is described but its offset is not given: a later ship reads it
        again."""
        from workflow_traces.exporters.file import RECORD_FIELDS

        fields: tuple[str, ...] = RECORD_FIELDS
        at: int | None = F_RECORD_ID
        prefix = ""
        offset = 0
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                offset += len(line)
                before = offset <= start
                if before and not line.startswith(b"{"):
                    continue  # shipped already; only the header and id prefixes matter
                try:
                    value = _loads(line)
                except orjson.JSONDecodeError:
                    if not before and not quiet:
                        cut = not line.endswith(b"\n")
                        why = "cut short (no end of line)" if cut else "not valid JSON"
                        self.problems.append(Problem(f"{path}: line {lineno}", why))
                        if cut:
                            return
                        yield None, offset
                    continue
                if isinstance(value, dict):
                    if "id_prefix" in value:
                        prefix = str(value["id_prefix"])
                    elif "fields" in value:
                        fields = tuple(value["fields"])
                        at = fields.index("record_id") if "record_id" in fields else None
                    continue
                if before:
                    continue
                try:
                    if not isinstance(value, list):
                        raise TypeError("expected a JSON array")
                    if at is not None and type(value[at]) is int:
                        value[at] = prefix + str(value[at])
                    yield _from_values(fields, value, len(line)), offset
                except (TypeError, ValueError, IndexError) as exc:
                    if not quiet:
                        self.problems.append(
                            Problem(f"{path}: line {lineno}", f"not a record ({exc})")
                        )
                    yield None, offset


def _from_values(fields: tuple[str, ...], values: list[Any], length: int) -> Record:
    from workflow_traces.exporters.file import RECORD_FIELDS

    if fields == RECORD_FIELDS and len(values) == len(fields):
        return Record(*values, size=max(256, length))  # type: ignore[misc]
    known = set(Record._fields)
    data = {k: v for k, v in zip(fields, values, strict=False) if k in known}
    if "run_id" not in data or "record_id" not in data:
        raise ValueError("no run_id or record_id")
    return Record(**data)


def open_source(location: str | os.PathLike[str]) -> Source:
    """The source at ``location``: a SQLite database file or a file-sink folder."""
    path = Path(location)
    if path.is_dir():
        return FileSource(path)
    if path.is_file():
        with open(path, "rb") as fh:
            magic = fh.read(16)
        if magic.startswith(b"SQLite format 3"):
            return SQLiteSource(path)
        raise ConfigError(
            f"source: {os.fspath(location)!r} is neither a SQLite database nor a folder"
        )
    raise ConfigError(f"source: {os.fspath(location)!r} does not exist")
