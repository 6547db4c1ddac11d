"""What the read commands print: log lines (escaped for the terminal, coloured only when asked),
and the run list's rows. Written in chunks, so a million records stream at a flat memory."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

import orjson

from workflow_traces.core.record import Record
from workflow_traces.store.base import RunSummary
from workflow_traces.store.jsonable import record_to_json
from workflow_traces.store.tree import paint
from workflow_traces.text import escape_terminal

__all__ = ["LogWriter", "command_failed", "print_rows", "run_rows", "stdout", "use_colour"]


def command_failed(command: str, exc: BaseException) -> int:
    """Say on stderr why ``workflow-traces <command>`` failed, escaped for the terminal, and
    return its exit code (2). Our own errors (``TraceError``) say it all; others (the source or
    a checkpoint went away meanwhile) are named by their type."""
    from workflow_traces.errors import TraceError

    text = str(exc) if isinstance(exc, TraceError) else f"{type(exc).__name__}: {exc}"
    print(f"workflow-traces {command}: {escape_terminal(text)}", file=sys.stderr)
    return 2


_LEVEL_COLOURS = {"WARNING": "failed", "ERROR": "failed", "CRITICAL": "failed", "DEBUG": "skipped"}
_CHUNK = 2000


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class LogWriter:
    """Writes records one a line: ``2026-01-02 03:04:05.123 job/stage INFO: message``, a
    traceback indented below; lifecycle events as ``-- stage fetch failed 0.12s``. With
    ``ndjson``, one JSON object a record instead."""

    def __init__(self, stream: IO[str], *, ndjson: bool = False, colour: bool = False) -> None:
        self.stream = stream
        self.ndjson = ndjson
        self.colour = colour
        self.count = 0
        self._second = -1
        self._date = ""
        self._lines: list[str] = []
        self._where: dict[tuple[str | None, str | None], str] = {}

    def _time(self, time_ns: int) -> str:
        sec = time_ns // 1_000_000_000
        if sec != self._second:
            self._second = sec
            self._date = time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(sec))
        return self._date + str(time_ns // 1_000_000 % 1000 + 1000)[1:]

    def line(self, rec: Record) -> str:
        if self.ndjson:
            return orjson.dumps(record_to_json(rec), default=str).decode() + "\n"
        key = (rec.job_name, rec.stage_name)
        where = self._where.get(key)
        if where is None:
            names = "/".join(n for n in key if n)
            where = escape_terminal(names, newlines=False) + " " if names else ""
            self._where[key] = where
        if rec.kind == "event":
            name = {"workflow": rec.workflow_name, "job": rec.job_name}.get(
                rec.scope or "", rec.stage_name
            )
            what = f"{rec.scope} {escape_terminal(name or '?', newlines=False)}"
            event = paint(rec.event or "?", rec.event, self.colour)
            text = f"{self._time(rec.time_ns)} -- {what} {event}"
            if rec.duration is not None:
                text += f" {rec.duration:.3f}s"
            if rec.exc_type:
                error = escape_terminal(f"{rec.exc_type}: {rec.exc_message}", newlines=False)
                text += f"  [{error}]"
            return text + "\n"
        level = rec.level
        if self.colour:
            level = paint(level, _LEVEL_COLOURS.get(level), True)
        message = rec.message
        if not message.isprintable():
            message = escape_terminal(message).replace("\n", "\n    ")
        text = f"{self._time(rec.time_ns)} {where}{level}: {message}\n"
        if rec.exc_traceback:
            tb = escape_terminal(rec.exc_traceback.rstrip("\n")).replace("\n", "\n    ")
            text += f"    {tb}\n"
        return text

    def write(self, rec: Record) -> None:
        self._lines.append(self.line(rec))
        self.count += 1
        if len(self._lines) >= _CHUNK:
            self.flush()

    def write_all(self, records: Iterable[Record]) -> None:
        lines = self._lines
        line = self.line
        for rec in records:
            lines.append(line(rec))
            if len(lines) >= _CHUNK:
                self.count += len(lines)
                self.stream.write("".join(lines))
                lines.clear()
        self.count += len(lines)
        self.stream.write("".join(lines))
        lines.clear()
        self.stream.flush()

    def flush(self) -> None:
        if self._lines:
            self.stream.write("".join(self._lines))
            self._lines.clear()
        self.stream.flush()


def run_rows(runs: list[RunSummary]) -> list[tuple[str, ...]]:
    """The run list's rows, each child run right under its listed parent (``└─``); a child
    whose parent is not listed is marked ``↳`` with its parent's id."""
    listed = {s.run_id for s in runs}
    children: dict[str, list[RunSummary]] = {}
    for s in runs:
        if s.parent_run_id is not None and s.parent_run_id in listed:
            children.setdefault(s.parent_run_id, []).append(s)
    rows: list[tuple[str, ...]] = [
        ("STARTED (UTC)", "STATUS", "DURATION", "RECORDS", "WORKFLOW", "RUN_ID")
    ]
    seen: set[str] = set()

    def emit(s: RunSummary, mark: str, depth: int) -> None:
        if s.run_id in seen:
            return
        seen.add(s.run_id)
        run_id = mark + escape_terminal(s.run_id, newlines=False)
        if mark == "↳ " and s.parent_run_id is not None:
            run_id += f"  (child of {escape_terminal(s.parent_run_id, newlines=False)})"
        rows.append(
            (
                s.started.strftime("%Y-%m-%d %H:%M:%S") if s.started else "-",
                s.status or "-",
                f"{s.duration:.3f}s" if s.duration is not None else "-",
                str(s.record_count),
                escape_terminal(s.workflow_name or "-", newlines=False),
                run_id,
            )
        )
        kids = children.get(s.run_id, [])
        for child in reversed(kids):  # listed newest first: under the parent, in start order
            emit(child, "   " * depth + "└─ ", depth + 1)

    for s in runs:
        if s.parent_run_id is None:
            emit(s, "", 0)
        elif s.parent_run_id not in listed:
            emit(s, "↳ ", 0)
    return rows


def print_rows(rows: list[tuple[str, ...]], out: Any, colour: bool = False) -> None:
    """The rows as aligned columns; with ``colour`` the STATUS column painted."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[-1] = 0  # no padding after the last column
    for n, r in enumerate(rows):
        cells = [cell.ljust(w) for cell, w in zip(r, widths, strict=True)]
        if colour and n:
            cells[1] = paint(cells[1], r[1], True)
        out.write("  ".join(cells).rstrip() + "\n")


def stdout() -> IO[str]:
    """sys.stdout, writing text that does not encode (lone surrogates) backslash-escaped."""
    stream = sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    return stream
