"""Datadog encoder: the logs intake v2 (``POST /api/v2/logs``), a JSON array of log objects.

Facts from Datadog's "Send logs" API reference: at most 5 MB uncompressed per request, 1,000
entries per array and 1 MB per log (a longer log is truncated); gzip is accepted and
recommended; 202 means accepted. Reserved keys: ``message``, ``status`` (the level),
``service``, ``ddsource``, ``ddtags`` ("k:v,k:v") and ``hostname``; every other key becomes an
attribute. ``status`` is one of Datadog's statuses, the nearest to the record's level (a custom
level 25 is ``info``). ``ddtags`` are normalized as Datadog's tagging requirements say, so a tag
is stored as sent: ``env:<environment>``, each label, and ``workflow:<workflow name>``
(``"Nightly ETL #2"`` becomes ``workflow:nightly_etl_2``). We keep the limits a little under
Datadog's (decimal megabytes) and mark what we cut.

Attributes (each left out when it is None): ``timestamp`` (ms since the epoch), ``run_id``,
``parent_run_id``, ``workflow_name``, ``job_name``, ``stage_name``, ``record_id``,
``logger.name``, ``process``, ``thread``, ``filename``, ``lineno``, ``func_name``;
``error.kind/message/stack`` (Datadog's standard error attributes) when there is an exception;
``kind`` and ``lifecycle.{scope, event, status, duration}`` for lifecycle events; the trace
correlation ``dd.trace_id`` and ``dd.span_id`` (64-bit decimal, as Datadog's docs ask of
OpenTelemetry ids) with the W3C hex ``trace_id`` and ``span_id``; ``extras``;
``truncated: true`` when the log was cut.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from workflow_traces.core.record import F_MESSAGE, F_RECORD_ID, F_TIME_NS, Record
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.payload import (
    Contexts,
    Request,
    hole,
    json_text,
    pack_text,
    template,
    truncate_utf8,
    utf8_len,
)

__all__ = [
    "DATADOG_MAX_ENTRIES",
    "DATADOG_MAX_ENTRY_BYTES",
    "DATADOG_MAX_PAYLOAD_BYTES",
    "DATADOG_MAX_TAG_LENGTH",
    "datadog_entry",
    "datadog_status",
    "datadog_tags",
    "encode_datadog",
    "normalize_tag",
]

DATADOG_MAX_PAYLOAD_BYTES = 5_000_000
DATADOG_MAX_ENTRIES = 1000
DATADOG_MAX_ENTRY_BYTES = 1_000_000
DATADOG_SOURCE = "workflow-traces"

#: Datadog's standard statuses for the stdlib's levels, by level number // 10.
_STATUSES = ("debug", "debug", "info", "warning", "error", "critical")
#: Datadog's tagging requirements: at most 200 characters, lowercase, a letter first, then
#: letters, digits, "_", "-", ":", "." and "/"; any other character becomes "_", runs of "_"
#: become one, and a trailing "_" (or ":") is removed.
DATADOG_MAX_TAG_LENGTH = 200
_TAG_OTHER = re.compile(r"[^\w\-:./]")
_TAG_RUNS = re.compile(r"_+")


def datadog_status(levelno: int) -> str:
    """The Datadog status nearest to a stdlib level number (a tie goes to the lower one):
    ``debug``, ``info``, ``warning``, ``error`` or ``critical``."""
    return _STATUSES[min(5, max(0, (levelno + 4) // 10))]


def normalize_tag(tag: str) -> str:
    """``tag`` (``key:value`` or a bare value) normalized as Datadog documents it, so the tag
    stored is the tag sent; empty when nothing of it is left."""
    tag = _TAG_RUNS.sub("_", _TAG_OTHER.sub("_", tag.lower()))
    start = 0
    while start < len(tag) and not tag[start].isalpha():
        start += 1
    return tag[start : start + DATADOG_MAX_TAG_LENGTH].rstrip("_:")


def _tag(key: str, value: str) -> str:
    return normalize_tag(f"{key}:{value}")


def datadog_tags(labels: Mapping[str, str], environment: str | None) -> str:
    """The static part of ``ddtags``: ``env:<environment>`` and each label as ``k:v``."""
    tags = [] if environment is None else [_tag("env", environment)]
    tags.extend(_tag(k, v) for k, v in labels.items())
    return ",".join(t for t in tags if t)


def datadog_entry(rec: Record, service: str, tags: str) -> dict[str, Any]:
    """One Datadog log object for ``rec`` (attributes that are None are left out)."""
    if rec.workflow_name is not None:
        workflow = _tag("workflow", rec.workflow_name)
        tags = f"{tags},{workflow}" if tags else workflow
    entry: dict[str, Any] = {
        "message": rec.message,
        "status": datadog_status(rec.levelno),
        "service": service,
        "ddsource": DATADOG_SOURCE,
        "ddtags": tags,
        "hostname": rec.host,
        "timestamp": rec.time_ns // 1_000_000,
        "run_id": rec.run_id,
        "record_id": rec.record_id,
        "process": rec.process,
        "thread": rec.thread,
    }
    if rec.parent_run_id is not None:
        entry["parent_run_id"] = rec.parent_run_id
    if rec.workflow_name is not None:
        entry["workflow_name"] = rec.workflow_name
    if rec.job_name is not None:
        entry["job_name"] = rec.job_name
    if rec.stage_name is not None:
        entry["stage_name"] = rec.stage_name
    if rec.logger is not None:
        entry["logger"] = {"name": rec.logger}
    if rec.filename is not None:
        entry["filename"] = rec.filename
        entry["lineno"] = rec.lineno
        entry["func_name"] = rec.func_name
    if rec.exc_type is not None or rec.exc_traceback is not None:
        entry["error"] = {
            "kind": rec.exc_type,
            "message": rec.exc_message,
            "stack": rec.exc_traceback,
        }
    if rec.kind != "log":
        entry["kind"] = rec.kind
        entry["lifecycle"] = {
            "scope": rec.scope,
            "event": rec.event,
            "status": rec.status,
            "duration": rec.duration,
        }
    if rec.trace_id is not None and rec.span_id is not None:
        entry.update(_correlation(rec.trace_id, rec.span_id))
    if rec.extras:
        entry["extras"] = rec.extras
    return entry


def _correlation(trace_id: str, span_id: str) -> dict[str, str]:
    """Datadog's log-trace correlation attributes: ``dd.trace_id`` and ``dd.span_id`` as
    unsigned 64-bit decimal numbers (the low 64 bits of the W3C trace id, the span id), the
    form Datadog's docs ask for when converting OpenTelemetry ids; and the W3C hex ids as
    ``trace_id`` and ``span_id``, the top-level fields its OpenTelemetry correlation reads."""
    return {
        "dd.trace_id": str(int(trace_id[16:], 16)),
        "dd.span_id": str(int(span_id, 16)),
        "trace_id": trace_id,
        "span_id": span_id,
    }


def _encoded(entry: dict[str, Any], limit: int) -> bytes:
    data = dumps(entry)
    if len(data) <= limit:
        return data
    # Too large: cut the longest texts (message, then the traceback) and mark the entry.
    entry["truncated"] = True
    error = entry.get("error")
    for _ in range(4):
        excess = len(data) - limit
        if excess <= 0:
            break
        stack = error.get("stack") if isinstance(error, dict) else None
        message = entry["message"]
        if isinstance(stack, str) and len(stack) > len(message) and isinstance(error, dict):
            error["stack"] = truncate_utf8(stack, max(0, len(stack.encode()) - excess - 64))
        else:
            entry["message"] = truncate_utf8(message, max(0, len(message.encode()) - excess - 64))
        data = dumps(entry)
    if len(data) > limit:  # the rest of the entry is too large (huge extras): keep the basics
        entry.pop("extras", None)
        entry["message"] = truncate_utf8(entry["message"], limit // 2)
        if isinstance(error, dict):
            error["stack"] = truncate_utf8(str(error.get("stack") or ""), limit // 4)
        data = dumps(entry)
    return data


def _template(rec: Record, service: str, tags: str) -> tuple[tuple[str, ...], int] | None:
    """The entry of ``rec``'s context with holes for the message, timestamp and record_id, and
    its size in bytes without them."""
    entry = datadog_entry(rec._replace(message=hole(0), record_id=hole(2)), service, tags)
    entry["timestamp"] = hole(1)
    parts = template(entry, 3)
    if parts is None:
        return None
    return parts, sum(utf8_len(part) for part in parts)


_contexts: dict[tuple[str, str], Contexts] = {}


def encode_datadog(
    batch: Sequence[Record],
    service: str,
    tags: str,
    *,
    max_entries: int = DATADOG_MAX_ENTRIES,
    max_payload: int = DATADOG_MAX_PAYLOAD_BYTES,
    max_entry: int = DATADOG_MAX_ENTRY_BYTES,
) -> list[Request]:
    """Requests for the Datadog intake, each within Datadog's limits."""
    contexts = _contexts.get((service, tags))
    if contexts is None:
        contexts = _contexts[service, tags] = Contexts(lambda rec: _template(rec, service, tags))
    get = contexts.get
    texts: list[str] = []
    room = max_entry - 64  # the record_id and the timestamp take less
    for rec in batch:
        found = get(rec)
        message = rec[F_MESSAGE]
        if found is not None and found[1] + 6 * len(message) < room:
            p = found[0]
            text = (
                f"{p[0]}{json_text(message)}{p[1]}{rec[F_TIME_NS] // 1_000_000}{p[2]}"
                f"{json_text(rec[F_RECORD_ID])}{p[3]}"
            )
        else:
            data = _encoded(datadog_entry(rec, service, tags), max_entry)
            text = data.decode()
        texts.append(text)
    groups = pack_text(batch, texts, max_items=max_entries, max_bytes=max_payload)
    return [Request(list(recs), f"[{','.join(parts)}]".encode()) for recs, parts in groups]
