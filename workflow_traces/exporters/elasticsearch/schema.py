"""How a record looks in Elasticsearch: the document (ECS field names plus ours), the mapping,
and the way back from a document to a record.

ECS fields: ``@timestamp`` (nanosecond precision), ``message``, ``log.level``, ``log.logger``,
``log.origin.file.name/line``, ``log.origin.function``, ``service.name``, ``host.name``,
``process.pid``, ``process.thread.id``, ``error.type/message/stack_trace``, ``labels.*`` (the
run's scalar extras, as keywords) and ``ecs.version``. Ours, at the top level: ``run_id``,
``parent_run_id``, ``workflow_name``, ``job_name``, ``stage_name``, ``kind``, ``scope``,
``event``, ``status``, ``duration``, ``record_id``, ``levelno``, ``is_err``, ``time_ns`` (exact
nanoseconds, so records read back are the records written) and ``extras`` (stored, not indexed).
Fields whose value is None are left out.

Pure functions only: no client, no I/O. Runs on the sink's worker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from workflow_traces.core.record import (
    F_EXC_TYPE,
    F_EXTRAS,
    F_FILENAME,
    F_FUNC_NAME,
    F_HOST,
    F_IS_ERR,
    F_JOB_NAME,
    F_LEVEL,
    F_LEVELNO,
    F_LINENO,
    F_LOGGER,
    F_MESSAGE,
    F_PARENT_RUN_ID,
    F_PROCESS,
    F_RECORD_ID,
    F_RUN_ID,
    F_STAGE_NAME,
    F_THREAD,
    F_TIME_NS,
    F_WORKFLOW_NAME,
    Record,
)
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.payload import json_text

__all__ = [
    "ECS_VERSION",
    "MAPPINGS",
    "encode_action",
    "encode_actions",
    "record_from_doc",
    "record_to_doc",
    "seq_key",
    "timestamp_ns",
]

ECS_VERSION = "8.11.0"

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_TEXT = {"type": "text"}

#: The index mapping (also the data stream template's). Unknown top-level fields are kept in
#: ``_source`` but not indexed (``dynamic: false``), so odd documents cannot explode the mapping.
MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "dynamic_templates": [
        {"labels": {"path_match": "labels.*", "mapping": {"type": "keyword", "ignore_above": 1024}}}
    ],
    "properties": {
        "@timestamp": {"type": "date_nanos"},
        "time_ns": {"type": "long"},
        "message": _TEXT,
        "log": {
            "properties": {
                "level": _KEYWORD,
                "logger": _KEYWORD,
                "origin": {
                    "properties": {
                        "file": {
                            "properties": {"name": _KEYWORD, "line": {"type": "long"}},
                        },
                        "function": _KEYWORD,
                    }
                },
            }
        },
        "levelno": {"type": "integer"},
        "service": {"properties": {"name": _KEYWORD}},
        "host": {"properties": {"name": _KEYWORD}},
        "process": {
            "properties": {
                "pid": {"type": "long"},
                "thread": {"properties": {"id": {"type": "long"}}},
            }
        },
        "error": {
            "properties": {
                "type": _KEYWORD,
                "message": _TEXT,
                "stack_trace": {"type": "text", "index": False},
            }
        },
        "labels": {"type": "object", "dynamic": True},
        "ecs": {"properties": {"version": _KEYWORD}},
        "run_id": _KEYWORD,
        "parent_run_id": _KEYWORD,
        "workflow_name": _KEYWORD,
        "job_name": _KEYWORD,
        "stage_name": _KEYWORD,
        "kind": _KEYWORD,
        "scope": _KEYWORD,
        "event": _KEYWORD,
        "status": _KEYWORD,
        "duration": {"type": "double"},
        "record_id": _KEYWORD,
        "is_err": {"type": "boolean"},
        "extras": {"type": "object", "enabled": False},
    },
}

_LABEL_TYPES = (str, int, float, bool)

# @timestamp text of the last whole second seen, replaced as one tuple so that several sink
# workers can share it: records arrive in bursts within one second.
_second_text: tuple[int, str] = (-1, "")


def timestamp_ns(time_ns: int) -> str:
    """``time_ns`` as RFC 3339 UTC text with nanoseconds: ``2024-05-01T12:00:00.123456789Z``."""
    global _second_text
    second, frac = divmod(time_ns, 1_000_000_000)
    cached, prefix = _second_text
    if cached != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, prefix)
    return f"{prefix}.{frac:09d}Z"


def _labels(extras: dict[str, Any]) -> dict[str, Any] | None:
    labels = {
        str(k).replace(".", "_"): v
        for k, v in extras.items()
        if isinstance(v, _LABEL_TYPES) and not (isinstance(v, float) and math.isnan(v))
    }
    return labels or None


# Parts of a document that repeat from record to record (the call site, the process and thread,
# the host, the run's extras) are built once and shared: the documents are serialized, never
# changed. Each cache is cleared when it grows past _CACHE_MAX entries.
_CACHE_MAX = 4096
_origins: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
_processes: dict[tuple[int, int], dict[str, Any]] = {}
_hosts: dict[str, dict[str, str]] = {}
_services: dict[str, dict[str, str]] = {}
_last_labels: tuple[Any, dict[str, Any] | None] = (None, None)
_ECS = {"version": ECS_VERSION}


def _origin(filename: str | None, lineno: int | None, func: str | None) -> dict[str, Any] | None:
    key = (filename, lineno, func)
    origin = _origins.get(key)
    if origin is None:
        origin = {}
        if filename is not None or lineno is not None:
            file: dict[str, Any] = {}
            if filename is not None:
                file["name"] = filename
            if lineno is not None:
                file["line"] = lineno
            origin["file"] = file
        if func is not None:
            origin["function"] = func
        if len(_origins) >= _CACHE_MAX:
            _origins.clear()
        _origins[key] = origin
    return origin or None


def _process(pid: int, thread: int) -> dict[str, Any]:
    key = (pid, thread)
    proc = _processes.get(key)
    if proc is None:
        if len(_processes) >= _CACHE_MAX:
            _processes.clear()
        proc = _processes[key] = {"pid": pid, "thread": {"id": thread}}
    return proc


def _named(cache: dict[str, dict[str, str]], name: str) -> dict[str, str]:
    value = cache.get(name)
    if value is None:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        value = cache[name] = {"name": name}
    return value


def _labels_of(extras: dict[str, Any]) -> dict[str, Any] | None:
    global _last_labels
    last, labels = _last_labels
    if last is extras:
        return labels
    labels = _labels(extras)
    _last_labels = (extras, labels)
    return labels


def record_to_doc(rec: Record, service_name: str | None = None) -> dict[str, Any]:
    """The Elasticsearch document for ``rec``. Its nested objects may be shared with other
    documents: serialize it, do not change it."""
    (
        time_ns,
        level,
        levelno,
        message,
        run_id,
        parent_run_id,
        workflow_name,
        job_name,
        stage_name,
        filename,
        lineno,
        func_name,
        process,
        thread,
        host,
        record_id,
        is_err,
        extras,
        exc_type,
        exc_message,
        exc_traceback,
        kind,
        scope,
        event,
        status,
        duration,
        logger,
        _size,
    ) = rec
    log: dict[str, Any] = {"level": level}
    if logger is not None:
        log["logger"] = logger
    origin = _origin(filename, lineno, func_name)
    if origin is not None:
        log["origin"] = origin
    doc: dict[str, Any] = {
        "@timestamp": timestamp_ns(time_ns),
        "time_ns": time_ns,
        "message": message,
        "log": log,
        "levelno": levelno,
        "host": _named(_hosts, host),
        "process": _process(process, thread),
        "ecs": _ECS,
        "record_id": record_id,
        "run_id": run_id,
        "kind": kind,
        "is_err": is_err,
    }
    service = service_name or workflow_name
    if service is not None:
        doc["service"] = _named(_services, service)
    if parent_run_id is not None:
        doc["parent_run_id"] = parent_run_id
    if workflow_name is not None:
        doc["workflow_name"] = workflow_name
    if job_name is not None:
        doc["job_name"] = job_name
    if stage_name is not None:
        doc["stage_name"] = stage_name
    if scope is not None:
        doc["scope"] = scope
    if event is not None:
        doc["event"] = event
    if status is not None:
        doc["status"] = status
    if duration is not None:
        doc["duration"] = duration
    if exc_type is not None or exc_message is not None or exc_traceback is not None:
        error: dict[str, Any] = {}
        if exc_type is not None:
            error["type"] = exc_type
        if exc_message is not None:
            error["message"] = exc_message
        if exc_traceback is not None:
            error["stack_trace"] = exc_traceback
        doc["error"] = error
    if extras is not None:
        doc["extras"] = extras
        labels = _labels_of(extras) if isinstance(extras, dict) else None
        if labels:
            doc["labels"] = labels
    return doc


_ACTIONS = {"index": '{"index":{"_id":', "create": '{"create":{"_id":'}
_VARYING = ("@timestamp", "time_ns", "message", "record_id")
#: exc_type, exc_message, exc_traceback, kind, scope, event, status, duration of a log line
#: (the fields from F_EXC_TYPE up to F_LOGGER).
_PLAIN = (None, None, None, "log", None, None, None, None)
#: The other fields of a log line's context (all but time_ns, message, record_id, extras).
_CONTEXT = itemgetter(
    F_LEVEL,
    F_LEVELNO,
    F_RUN_ID,
    F_PARENT_RUN_ID,
    F_WORKFLOW_NAME,
    F_JOB_NAME,
    F_STAGE_NAME,
    F_FILENAME,
    F_LINENO,
    F_FUNC_NAME,
    F_PROCESS,
    F_THREAD,
    F_HOST,
    F_IS_ERR,
    F_LOGGER,
)

# The JSON of everything but the varying fields, per context (call site, run, thread, level,
# extras object): log lines from one place of one run share it. Each entry keeps its extras
# object alive, so an id() in a key always means that very object.
_contexts: dict[tuple[Any, ...], tuple[Any, str]] = {}
_last_extras: tuple[Any] = (None,)


def _context(rec: Record, service_name: str | None) -> str:
    doc = record_to_doc(rec, service_name)
    for key in _VARYING:
        del doc[key]
    return dumps(doc)[1:-1].decode()


def encode_actions(batch: Sequence[Record], op: str, service_name: str | None = None) -> list[str]:
    """The bulk lines of each record of ``batch`` (action with ``_id`` = record_id, then the
    document, each ending in a newline), as text.

    Plain log lines take a fast path: the part of the document they share with the previous
    lines of the same context is serialized once. The result is the JSON of
    :func:`record_to_doc` (the keys in another order)."""
    global _last_extras
    action = _ACTIONS[op]
    contexts = _contexts
    last_extras = _last_extras[0]
    second, prefix = _second_text
    out: list[str] = []
    append = out.append
    for rec in batch:
        extras = rec[F_EXTRAS]
        if rec[F_EXC_TYPE:F_LOGGER] == _PLAIN and (extras is None or extras is last_extras):
            key = (service_name, id(extras), _CONTEXT(rec))
            hit = contexts.get(key)
            if hit is None or hit[0] is not extras:
                if len(contexts) >= _CACHE_MAX:
                    contexts.clear()
                hit = contexts[key] = (extras, _context(rec, service_name))
            time_ns = rec[F_TIME_NS]
            if time_ns // 1_000_000_000 != second:
                stamp = timestamp_ns(time_ns)
                second, prefix = _second_text
            else:
                stamp = f"{prefix}.{time_ns % 1_000_000_000:09d}Z"
            record_id = json_text(rec[F_RECORD_ID])
            append(
                f'{action}{record_id}}}}}\n{{"@timestamp":"{stamp}","time_ns":{time_ns},'
                f'"message":{json_text(rec[F_MESSAGE])},"record_id":{record_id},{hit[1]}}}\n'
            )
            continue
        if extras is not None:
            last_extras = extras
            _last_extras = (extras,)
        doc = dumps(record_to_doc(rec, service_name)).decode()
        append(f"{action}{dumps(rec.record_id).decode()}}}}}\n{doc}\n")
    return out


def encode_action(rec: Record, op: str, service_name: str | None = None) -> bytes:
    """The two bulk lines of ``rec`` (see :func:`encode_actions`)."""
    return encode_actions((rec,), op, service_name)[0].encode()


def _get(doc: dict[str, Any], *path: str) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def record_from_doc(doc: dict[str, Any]) -> Record:
    """The record a document was made from (``size`` is not stored: it reads back as 256)."""
    return Record(
        time_ns=int(doc["time_ns"]),
        level=doc["log"]["level"],
        levelno=int(doc["levelno"]),
        message=doc["message"],
        run_id=doc["run_id"],
        parent_run_id=doc.get("parent_run_id"),
        workflow_name=doc.get("workflow_name"),
        job_name=doc.get("job_name"),
        stage_name=doc.get("stage_name"),
        filename=_get(doc, "log", "origin", "file", "name"),
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
        event=doc.get("event"),
        status=doc.get("status"),
        duration=doc.get("duration"),
        logger=_get(doc, "log", "logger"),
    )


def seq_key(record_id: str) -> tuple[str, int]:
    """Orders record ids of one process by creation (``<prefix>-<counter>``), so records with
    the same time_ns read back in the order the SQLite store gives them."""
    prefix, _, counter = record_id.rpartition("-")
    if counter.isdigit():
        return prefix, int(counter)
    return record_id, -1
