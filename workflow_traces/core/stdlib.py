"""Building records on the caller's thread: from a Trace call or from a stdlib LogRecord."""

from __future__ import annotations

import logging
import traceback
from types import TracebackType
from typing import Any

from workflow_traces.core import record as _record
from workflow_traces.core.context import _SCOPE
from workflow_traces.core.record import Record, RecordValues, as_record, get_ident, host_name

__all__ = [
    "CONFIG_KEYS",
    "SINGLE_KEYS",
    "NameDefaults",
    "exception_fields",
    "from_log_record",
    "log_record_values",
    "user_extras",
]


#: Keys of ``extras`` that configure tracing rather than describe the run; they are not copied
#: into each record's extras.
#: A single trace's handler keys, read at the top level of extras and of the settings (see
#: ``settings.effective``).
SINGLE_KEYS = (
    "buffer_size",
    "flush_interval",
    "queue_size",
    "queue_bytes",
    "overflow",
    "block_timeout",
    "level",
)
CONFIG_KEYS = frozenset(
    {
        "trace_type",
        "handlers",
        "fail_silently",
        "workflow_name",
        "job_name",
        "stage_name",
        "path",
        "base_path",
        "db_path",
        *SINGLE_KEYS,
        "profile",
    }
)

NameDefaults = tuple[str | None, str | None, str | None]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def user_extras(extras: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of ``extras`` worth stamping on records: everything but configuration keys."""
    if not extras:
        return None
    from workflow_traces.exporters.encode import json_safe

    kept = {k: v for k, v in extras.items() if k not in CONFIG_KEYS}
    return json_safe(kept) if kept else None


def name_defaults(extras: dict[str, Any] | None) -> NameDefaults:
    extras = extras or {}

    def get(key: str) -> str | None:
        value = extras.get(key)
        return None if value is None else str(value)

    return (get("workflow_name"), get("job_name"), get("stage_name"))


def exception_fields(exc_info: ExcInfo | None) -> tuple[str | None, str | None, str | None]:
    """Type name, message and formatted traceback of an exception, or three Nones."""
    if not exc_info or exc_info[0] is None:
        return None, None, None
    etype, value, tb = exc_info
    try:
        text = "".join(traceback.format_exception(etype, value, tb))
        message = str(value)
    except Exception as exc:  # a broken __str__ must not lose the record
        text = message = f"<unprintable exception: {type(exc).__name__}>"
    return etype.__qualname__, message, text


_STD_ATTRS = frozenset(logging.LogRecord("n", 0, "p", 0, "m", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_STAMP_ATTRS = frozenset({"workflow_name", "job_name", "stage_name", "run_id", "parent_run_id"})
_NSTD = len(_STD_ATTRS) - 3


def from_log_record(
    lr: logging.LogRecord,
    run_id: str,
    parent_run_id: str | None,
    names: NameDefaults,
    extras: dict[str, Any] | None,
) -> Record:
    """A Record from a stdlib LogRecord. Stamps come from the LogRecord's own ``extra``, then the
    active scope, then the handler's defaults."""
    return as_record(log_record_values(lr, run_id, parent_run_id, names, extras))


def log_record_values(
    lr: logging.LogRecord,
    run_id: str,
    parent_run_id: str | None,
    names: NameDefaults,
    extras: dict[str, Any] | None,
) -> RecordValues:
    """:func:`from_log_record`'s values as a plain tuple, what our handlers queue (see
    ``Trace._record`` for why)."""
    d = lr.__dict__
    sc = _SCOPE.get()
    rec_extras = extras
    run = parent = wf = job = stage = None
    if len(d) > _NSTD:  # the call passed extra=...: stamps and extras may be among them
        get = d.get
        run, parent = get("run_id"), get("parent_run_id")
        wf, job, stage = get("workflow_name"), get("job_name"), get("stage_name")
        custom = {k: v for k, v in d.items() if k not in _STD_ATTRS and k not in _STAMP_ATTRS}
        if custom:
            rec_extras = {**extras, **custom} if extras else custom
    try:
        message = lr.getMessage()
    except Exception as exc:
        try:
            message = f"{lr.msg!r} % {lr.args!r} (message formatting failed: {exc!r})"
        except Exception:  # the arguments' repr fails too: keep the record all the same
            message = f"<message formatting failed: {type(exc).__name__}>"
    if lr.exc_info:
        exc_type, exc_message, exc_tb = exception_fields(lr.exc_info)  # type: ignore[arg-type]
    elif lr.exc_text:
        exc_type, exc_message, exc_tb = None, None, lr.exc_text
    else:
        exc_type = exc_message = exc_tb = None
    levelno = lr.levelno
    # The scope by position (workflow, job, stage, run id, parent run id, trace id, span id):
    # faster than by name.
    return (
        int(lr.created * 1e9),
        lr.levelname,
        levelno,
        message,
        run or sc[3] or run_id,
        parent or (sc[4] if sc[3] else parent_run_id),
        wf or sc[0] or names[0],
        job or sc[1] or names[1],
        stage or sc[2] or names[2],
        lr.pathname,
        lr.lineno,
        lr.funcName,
        lr.process or _record._pid,
        lr.thread or get_ident(),
        _record._host or host_name(),
        next(_record._ids),  # the record id, made whole off this thread (see _record)
        levelno >= 40,
        rec_extras,
        exc_type,
        exc_message,
        exc_tb,
        "log",
        None,
        None,
        None,
        None,
        lr.name,
        sc[5],
        sc[6],
        len(message) + 256,
    )
