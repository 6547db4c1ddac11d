"""The one immutable record type, and the cheap pieces the caller's thread needs to build it.

A record is built once per log call and shared by every sink. Building it costs a frame lookup,
a clock read, a context-variable read and a tuple: no formatting, no I/O, no lock.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

__all__ = [
    "EVENTS",
    "F_DURATION",
    "F_EVENT",
    "F_EXC_MESSAGE",
    "F_EXC_TRACEBACK",
    "F_EXC_TYPE",
    "F_EXTRAS",
    "F_FILENAME",
    "F_FUNC_NAME",
    "F_HOST",
    "F_IS_ERR",
    "F_JOB_NAME",
    "F_KIND",
    "F_LEVEL",
    "F_LEVELNO",
    "F_LINENO",
    "F_LOGGER",
    "F_MESSAGE",
    "F_PARENT_RUN_ID",
    "F_PROCESS",
    "F_RECORD_ID",
    "F_RUN_ID",
    "F_SCOPE",
    "F_SIZE",
    "F_SPAN_ID",
    "F_STAGE_NAME",
    "F_STATUS",
    "F_THREAD",
    "F_TIME_NS",
    "F_TRACE_ID",
    "F_WORKFLOW_NAME",
    "LEVELS",
    "PARENT_SPAN_KEY",
    "SCOPES",
    "Record",
    "RecordValues",
    "as_record",
    "level_number",
    "new_record_id",
]

#: Level names and numbers, the stdlib's.
LEVELS: dict[str, int] = {
    "DEBUG": 10,
    "INFO": 20,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}
_LEVEL_ALIASES = {"WARN": 30, "EXCEPTION": 40, "FATAL": 50}

#: Lifecycle events and the scopes that emit them.
EVENTS = ("started", "succeeded", "failed", "skipped", "cancelled")
SCOPES = ("workflow", "job", "stage")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The extras key of an event's parent span id (see ``Record.parent_span_id``).
PARENT_SPAN_KEY = "parent_span_id"


class Record(NamedTuple):
    """One log line or lifecycle event. Immutable; built once and shared by every sink."""

    time_ns: int
    level: str
    levelno: int
    message: str
    run_id: str
    parent_run_id: str | None
    workflow_name: str | None
    job_name: str | None
    stage_name: str | None
    filename: str | None
    lineno: int | None
    func_name: str | None
    process: int
    thread: int
    host: str
    record_id: str
    is_err: bool = False
    extras: dict[str, Any] | None = None
    exc_type: str | None = None
    exc_message: str | None = None
    exc_traceback: str | None = None
    #: "log" for a log line, "event" for a lifecycle event.
    kind: str = "log"
    #: For events: "workflow", "job" or "stage".
    scope: str | None = None
    #: For events: one of EVENTS.
    event: str | None = None
    #: For events: the status the event leaves its scope in.
    status: str | None = None
    #: For end events: seconds since the matching start.
    duration: float | None = None
    logger: str | None = None
    #: The W3C trace id (32 hex digits) of the run's trace, from the record's scope.
    trace_id: str | None = None
    #: The W3C span id (16 hex digits) of the record's scope.
    span_id: str | None = None
    #: Approximate encoded size in bytes, used to batch by bytes.
    size: int = 256

    @property
    def parent_span_id(self) -> str | None:
        """For events: the span id of the scope around the event's scope, or of a remote
        parent (None at a trace's root). Kept in the event's extras under ``parent_span_id``,
        not in a field of its own: a 31st value would make the hot path's tuple literal a list
        turned into a tuple (CPython builds literals of more than 30 values that way), which
        tripled the cost of building it."""
        extras = self.extras
        value = extras.get(PARENT_SPAN_KEY) if type(extras) is dict else None
        return value if isinstance(value, str) else None

    @property
    def timestamp(self) -> datetime:
        """When the record was made, in UTC, to the microsecond."""
        return _EPOCH + timedelta(microseconds=self.time_ns // 1000)


#: A record's values as a plain tuple, in Record's field order: what the caller's thread queues.
RecordValues = tuple[Any, ...]

# Positions of Record's fields in a RecordValues tuple, for code that indexes plain tuples (the
# workers, the encoders' fast paths). Written as literals so that type checkers know each
# position's field type; tests/core/test_record_layout.py proves they are Record's field order,
# one per field, and that every tuple builder (core.trace, core.stdlib) follows it. A new field
# goes into Record, here and into those builders, and nowhere else.
F_TIME_NS: Final = 0
F_LEVEL: Final = 1
F_LEVELNO: Final = 2
F_MESSAGE: Final = 3
F_RUN_ID: Final = 4
F_PARENT_RUN_ID: Final = 5
F_WORKFLOW_NAME: Final = 6
F_JOB_NAME: Final = 7
F_STAGE_NAME: Final = 8
F_FILENAME: Final = 9
F_LINENO: Final = 10
F_FUNC_NAME: Final = 11
F_PROCESS: Final = 12
F_THREAD: Final = 13
F_HOST: Final = 14
F_RECORD_ID: Final = 15
F_IS_ERR: Final = 16
F_EXTRAS: Final = 17
F_EXC_TYPE: Final = 18
F_EXC_MESSAGE: Final = 19
F_EXC_TRACEBACK: Final = 20
F_KIND: Final = 21
F_SCOPE: Final = 22
F_EVENT: Final = 23
F_STATUS: Final = 24
F_DURATION: Final = 25
F_LOGGER: Final = 26
F_TRACE_ID: Final = 27
F_SPAN_ID: Final = 28
F_SIZE: Final = 29

_new = tuple.__new__


def as_record(values: RecordValues) -> Record:
    """The Record for a plain tuple of its values, its record id made whole (a plain tuple's
    holds only its counter, see "Record ids" below); a Record is returned as it is."""
    if type(values) is Record:
        return values
    if type(values[F_RECORD_ID]) is int:
        n = F_RECORD_ID
        values = (*values[:n], _id_prefix + str(values[n]), *values[n + 1 :])
    return _new(Record, values)


def level_number(level: str | int) -> int:
    """The number of a level name (case-insensitive) or number; unknown names raise ValueError."""
    if isinstance(level, int):
        return level
    name = str(level).upper()
    number = LEVELS.get(name) or _LEVEL_ALIASES.get(name)
    if number is None:
        expected = ", ".join(n.lower() for n in (*LEVELS, "exception"))
        raise ValueError(f"level: expected one of {expected}, got {level!r}")
    return number


def level_name(levelno: int) -> str:
    """The name of a level number, the stdlib's way for numbers between the named levels."""
    for name, number in LEVELS.items():
        if number == levelno:
            return name
    return f"Level {levelno}"


# Record ids: a random per-process prefix and a counter. Unique across processes and hosts, cheap
# to make (itertools.count is atomic under the GIL), and renewed in a forked child. The caller's
# thread queues only the counter's value (an int): the sinks' workers join it to the prefix, or
# write both for the reader to join (str() and + cost the caller a tenth of its time). A forked
# child drops the parent's queued records, so the prefix a worker reads is its records'. The counter
# starts at 10**15 so every id of a process has the same length and ids sort in the order they
# were made: the SQLite sink's unique index then grows at its right edge instead of splitting
# pages all over (a quarter of its insert cost).
_ID_START = 10**15
_ids = itertools.count(_ID_START)
_id_prefix = os.urandom(8).hex() + "-"
_pid = os.getpid()
_host: str | None = None


def new_record_id() -> str:
    """A new, globally unique record id."""
    return _id_prefix + str(next(_ids))


def process_id() -> int:
    """This process's id, cached (and renewed after fork)."""
    return _pid


def host_name() -> str:
    """This host's name, looked up once."""
    global _host
    if _host is None:
        _host = socket.gethostname()
    return _host


def _after_fork_in_child() -> None:
    global _ids, _id_prefix, _pid
    _ids = itertools.count(_ID_START)
    _id_prefix = os.urandom(8).hex() + "-"
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)

# Re-exported for the builders' hot paths.
get_ident = threading.get_ident
