"""From a search document back to the record it was made from (the way back of ``schema``), for
both layouts: the ECS one (``event.*``, ``log.level`` in lower case, the base name in
``log.origin.file.name`` and the full path in ``.path``) and the one before it (a top-level
``event`` text and ``duration`` in seconds, ``log.level`` in upper case, the full path in
``log.origin.file.name``). Pure functions, shared by the Elasticsearch and OpenSearch stores.
"""

from __future__ import annotations

from typing import Any

from workflow_traces.core.record import LEVELS, Record, level_name

__all__ = ["event_of", "record_from_doc", "seq_key"]


def _get(doc: dict[str, Any], *path: str) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def event_of(doc: dict[str, Any]) -> tuple[str | None, float | None]:
    """A document's lifecycle event and its duration in seconds: ECS ``event.action`` and
    ``event.duration`` (nanoseconds), or the top-level ``event`` and ``duration`` (seconds) of
    documents written before the ECS layout."""
    event = doc.get("event")
    if isinstance(event, dict):
        ns = event.get("duration")
        return event.get("action"), None if ns is None else ns / 1_000_000_000
    duration = doc.get("duration")
    return event, None if duration is None else float(duration)


def _level(text: str, levelno: int) -> str:
    """The record's level name from ``log.level``: ``info`` is ``INFO``; a level without a
    name of its own reads back as ``Level 25``, as logging names it."""
    upper = text.upper()
    if upper in LEVELS:
        return upper
    name = level_name(levelno)
    return name if name.lower() == text.lower() else upper


def _file(doc: dict[str, Any]) -> str | None:
    path = _get(doc, "log", "origin", "file", "path")
    found: str | None = path if path is not None else _get(doc, "log", "origin", "file", "name")
    return found


def record_from_doc(doc: dict[str, Any]) -> Record:
    """The record a document was made from (``size`` is not stored: it reads back as 256).
    Documents of both layouts are read (see the module's notes)."""
    levelno = int(doc["levelno"])
    event, duration = event_of(doc)
    return Record(
        time_ns=int(doc["time_ns"]),
        level=_level(doc["log"]["level"], levelno),
        levelno=levelno,
        message=doc["message"],
        run_id=doc["run_id"],
        parent_run_id=doc.get("parent_run_id"),
        workflow_name=doc.get("workflow_name"),
        job_name=doc.get("job_name"),
        stage_name=doc.get("stage_name"),
        filename=_file(doc),
        lineno=_get(doc, "log", "origin", "file", "line"),
        func_name=_get(doc, "log", "origin", "function"),
        process=_get(doc, "process", "pid"),
        thread=_get(doc, "process", "thread", "id"),
        host=_get(doc, "host", "name"),
        record_id=doc["record_id"],
        is_err=bool(doc.get("is_err", False)),
        extras=doc.get("extras"),
        exc_type=_get(doc, "error", "type"),
        exc_message=_get(doc, "error", "message"),
        exc_traceback=_get(doc, "error", "stack_trace"),
        kind=doc.get("kind", "log"),
        scope=doc.get("scope"),
        event=event,
        status=doc.get("status"),
        duration=duration,
        logger=_get(doc, "log", "logger"),
        trace_id=_get(doc, "trace", "id"),
        span_id=_get(doc, "span", "id"),
    )


def seq_key(record_id: str) -> tuple[str, int]:
    """Orders record ids of one process by creation (``<prefix>-<counter>``), so records with
    the same time_ns read back in the order the SQLite store gives them."""
    prefix, _, counter = record_id.rpartition("-")
    if counter.isdigit():
        return prefix, int(counter)
    return record_id, -1
