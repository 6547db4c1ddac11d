"""CloudWatch Logs encoder: ``PutLogEvents`` request bodies (AWS JSON 1.1).

Facts from the PutLogEvents API reference: at most 10,000 events and 1,048,576 bytes per batch,
counted as the UTF-8 size of each message plus 26 bytes per event; events in chronological order
within a batch; one batch spans at most 24 hours; one event at most 256 KB (we keep the older,
smaller limit, counting the 26 bytes). Events more than 2 hours ahead or older than 14 days (or
the group's retention) are rejected by the service, which reports them in
``rejectedLogEventsInfo``.

Each event's message is one JSON object (CloudWatch Logs Insights discovers its fields):
``timestamp`` (ISO-8601 UTC), ``level``, ``message``, the run and workflow fields, ``record_id``,
``host``, ``logger``, exception fields, event fields and ``extras``. A message too large is cut
and marked ``"truncated": true``. Records are sent to the log stream named by ``log_stream``, a
template that may use ``{run_id}``, ``{host}`` and ``{process}`` (``:`` and ``*``, which stream
names cannot hold, become ``_``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._encode import dumps, record_to_dict
from ._record import Record
from ._rest_payload import Request, truncate_utf8

__all__ = [
    "CLOUDWATCH_EVENT_OVERHEAD",
    "CLOUDWATCH_MAX_BATCH_BYTES",
    "CLOUDWATCH_MAX_EVENTS",
    "CLOUDWATCH_MAX_EVENT_BYTES",
    "CLOUDWATCH_MAX_SPAN_MS",
    "cloudwatch_message",
    "encode_cloudwatch",
    "stream_name",
]

CLOUDWATCH_MAX_EVENTS = 10_000
CLOUDWATCH_MAX_BATCH_BYTES = 1_048_576
CLOUDWATCH_EVENT_OVERHEAD = 26
CLOUDWATCH_MAX_EVENT_BYTES = 256 * 1024
CLOUDWATCH_MAX_SPAN_MS = 24 * 3600 * 1000

_DROP = ("time_ns", "levelno", "process", "thread", "is_err", "lineno", "filename", "func_name")


def stream_name(template: str, rec: Record) -> str:
    """The log stream for ``rec``: ``template`` filled in, made valid for CloudWatch."""
    name = template.format(run_id=rec.run_id, host=rec.host, process=rec.process)
    name = name.replace(":", "_").replace("*", "_")
    return name[:512] or "workflow-traces"


def cloudwatch_message(rec: Record, max_bytes: int = CLOUDWATCH_MAX_EVENT_BYTES) -> str:
    """The event message for ``rec``: compact JSON, at most ``max_bytes`` in UTF-8."""
    d: dict[str, Any] = record_to_dict(rec)
    for key in _DROP:
        d.pop(key, None)
    if rec.kind == "log":
        for key in ("kind", "scope", "event", "status", "duration"):
            d.pop(key, None)
    d = {k: v for k, v in d.items() if v is not None}
    if rec.filename:
        d["source"] = f"{rec.filename}:{rec.lineno} {rec.func_name}"
    text = dumps(d).decode()
    if len(text.encode()) <= max_bytes:
        return text
    d["truncated"] = True
    for key in ("exc_traceback", "message"):
        if key in d:
            d[key] = truncate_utf8(str(d[key]), max(256, max_bytes // 4))
    text = dumps(d).decode()
    if len(text.encode()) > max_bytes:
        d.pop("extras", None)
        text = dumps(d).decode()
    return truncate_utf8(text, max_bytes)


def encode_cloudwatch(
    batch: Sequence[Record],
    log_group: str,
    log_stream: str,
    *,
    max_events: int = CLOUDWATCH_MAX_EVENTS,
    max_bytes: int = CLOUDWATCH_MAX_BATCH_BYTES,
) -> list[Request]:
    """PutLogEvents bodies for ``batch``: one or more per log stream, events sorted by time,
    each within the count, size and 24-hour limits. ``Request.key`` is the stream's name."""
    streams: dict[str, list[Record]] = {}
    for rec in batch:
        streams.setdefault(stream_name(log_stream, rec), []).append(rec)
    limit = CLOUDWATCH_MAX_EVENT_BYTES - CLOUDWATCH_EVENT_OVERHEAD
    requests: list[Request] = []
    for stream, recs in streams.items():
        events: list[dict[str, Any]] = []
        records: list[Record] = []
        size = 0
        first = 0
        for rec in sorted(recs, key=lambda r: r.time_ns):
            message = cloudwatch_message(rec, limit)
            ts = rec.time_ns // 1_000_000
            cost = len(message.encode()) + CLOUDWATCH_EVENT_OVERHEAD
            if events and (
                len(events) >= max_events
                or size + cost > max_bytes
                or ts - first > CLOUDWATCH_MAX_SPAN_MS
            ):
                requests.append(_request(log_group, stream, events, records))
                events, records, size = [], [], 0
            if not events:
                first = ts
            events.append({"timestamp": ts, "message": message})
            records.append(rec)
            size += cost
        if events:
            requests.append(_request(log_group, stream, events, records))
    return requests


def _request(
    group: str, stream: str, events: list[dict[str, Any]], records: list[Record]
) -> Request:
    body = {"logGroupName": group, "logStreamName": stream, "logEvents": events}
    return Request(records, dumps(body), stream)
