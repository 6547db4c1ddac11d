"""How a record looks in Elasticsearch (and OpenSearch): the document (ECS field names plus
ours), the mapping, and the way back from a document to a record.

ECS fields, with the values ``ecs-logging``'s ``StdlibFormatter`` writes for the same call:
``@timestamp`` (nanosecond precision), ``message``, ``log.level`` (the level's name in lower
case), ``log.logger``, ``log.origin.file.name`` (the file's base name) and ``.line``,
``log.origin.function``, ``service.name``, ``host.name``, ``process.pid``, ``process.name``,
``process.thread.id`` and ``.name``, ``error.type/message/stack_trace``, ``labels.*`` (the run's
scalar extras, as keywords) and ``ecs.version``. ECS has no field for the source file's full path:
it goes in ``log.origin.file.path`` beside the base name. A lifecycle event is an ECS event:
``event.kind`` ``"event"``, ``event.action`` (started, succeeded, failed, skipped, cancelled),
``event.outcome`` (success, failure or unknown) and ``event.duration`` (nanoseconds); there is no
top-level ``event`` text, which would collide with ECS mappings such as the built-in ``logs-*-*``
templates. Ours, at the top level: ``run_id``, ``parent_run_id``, ``workflow_name``,
``job_name``, ``stage_name``, ``kind``, ``scope``, ``status``, ``record_id``, ``levelno``,
``is_err``, ``time_ns`` (exact nanoseconds, so records read back are the records written) and
``extras`` (stored, not indexed). Fields whose value is None are left out.

Documents written before the ECS event layout (a top-level ``event`` text and ``duration`` in
seconds, ``log.level`` in upper case, the full path in ``log.origin.file.name``) read back as
well: ``documents.record_from_doc`` takes both.

Pure functions only: no client, no I/O. Runs on the sink's worker.
"""

from __future__ import annotations

import math
import os
import sys
import threading
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
    F_SPAN_ID,
    F_STAGE_NAME,
    F_THREAD,
    F_TIME_NS,
    F_TRACE_ID,
    F_WORKFLOW_NAME,
    LEVELS,
    Record,
)
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.payload import json_text

__all__ = [
    "ECS_VERSION",
    "MAPPINGS",
    "encode_action",
    "encode_actions",
    "record_to_doc",
    "timestamp_ns",
]

#: The ECS version the documents follow (ecs-logging itself still writes 1.6.0).
ECS_VERSION = "8.17.0"
#: ECS ``event.outcome`` of each lifecycle event.
OUTCOMES = {"succeeded": "success", "failed": "failure"}

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
                            "properties": {
                                "name": _KEYWORD,
                                "path": _KEYWORD,
                                "line": {"type": "long"},
                            },
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
                "name": _KEYWORD,
                "thread": {"properties": {"id": {"type": "long"}, "name": _KEYWORD}},
            }
        },
        "event": {
            "properties": {
                "kind": _KEYWORD,
                "action": _KEYWORD,
                "outcome": _KEYWORD,
                "duration": {"type": "long"},
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
        "trace": {"properties": {"id": _KEYWORD}},
        "span": {"properties": {"id": _KEYWORD}},
        "run_id": _KEYWORD,
        "parent_run_id": _KEYWORD,
        "workflow_name": _KEYWORD,
        "job_name": _KEYWORD,
        "stage_name": _KEYWORD,
        "kind": _KEYWORD,
        "scope": _KEYWORD,
        "status": _KEYWORD,
        "record_id": _KEYWORD,
        "is_err": {"type": "boolean"},
        "extras": {"type": "object", "enabled": False},
    },
}

_LABEL_TYPES = (str, int, float, bool)
#: log.level of the standard levels (the others: the name in lower case).
_levels = {name: name.lower() for name in LEVELS}

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
                file["name"] = os.path.basename(filename) or filename
                if file["name"] != filename:
                    file["path"] = filename
            if lineno is not None:
                file["line"] = lineno
            origin["file"] = file
        if func is not None:
            origin["function"] = func
        if len(_origins) >= _CACHE_MAX:
            _origins.clear()
        _origins[key] = origin
    return origin or None


def _process_name(pid: int) -> str | None:
    """The process's name as logging's LogRecord.processName gives it, when ``pid`` is this
    process (a record from the spool may come from another)."""
    if pid != os.getpid():
        return None
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return "MainProcess"
    try:
        return str(mp.current_process().name)
    except Exception:  # pragma: no cover - as logging does
        return None


def _thread_name(pid: int, ident: int) -> str | None:
    """The name of thread ``ident`` of this process while it runs (logging's threadName)."""
    if pid != os.getpid():
        return None
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return None


def _process(pid: int, thread: int) -> dict[str, Any]:
    key = (pid, thread)
    proc = _processes.get(key)
    if proc is None:
        if len(_processes) >= _CACHE_MAX:
            _processes.clear()
        proc = {"pid": pid}
        name = _process_name(pid)
        if name is not None:
            proc["name"] = name
        thread_doc: dict[str, Any] = {"id": thread}
        thread_name = _thread_name(pid, thread)
        if thread_name is not None:
            thread_doc["name"] = thread_name
        proc["thread"] = thread_doc
        _processes[key] = proc
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
        trace_id,
        span_id,
        _size,
    ) = rec
    log: dict[str, Any] = {"level": _levels.get(level) or level.lower()}
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
        ecs_event: dict[str, Any] = {
            "kind": "event",
            "action": event,
            "outcome": OUTCOMES.get(event, "unknown"),
        }
        if duration is not None:
            ecs_event["duration"] = round(duration * 1_000_000_000)
        doc["event"] = ecs_event
    if status is not None:
        doc["status"] = status
    if exc_type is not None or exc_message is not None or exc_traceback is not None:
        error: dict[str, Any] = {}
        if exc_type is not None:
            error["type"] = exc_type
        if exc_message is not None:
            error["message"] = exc_message
        if exc_traceback is not None:
            error["stack_trace"] = exc_traceback
        doc["error"] = error
    if trace_id is not None:  # ECS log correlation: trace.id and span.id
        doc["trace"] = {"id": trace_id}
    if span_id is not None:
        doc["span"] = {"id": span_id}
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
    F_TRACE_ID,
    F_SPAN_ID,
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
