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
from operator import itemgetter
from typing import Any

from workflow_traces.core.record import F_MESSAGE, F_RECORD_ID, F_TIME_NS, Record
from workflow_traces.exporters.encode import dumps, iso_utc
from workflow_traces.exporters.rest.payload import (
    Contexts,
    Request,
    hole,
    json_text,
    template,
    truncate_utf8,
    utf8_len,
)

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

_AT = Record._fields.index
_OPTIONAL = tuple(
    (field, _AT(field))
    for field in (
        "parent_run_id",
        "workflow_name",
        "job_name",
        "stage_name",
        "logger",
        "exc_type",
        "exc_message",
        "exc_traceback",
    )
)
_TIME = itemgetter(F_TIME_NS)
_EVENT = tuple((field, _AT(field)) for field in ("kind", "scope", "event", "status", "duration"))


def stream_name(template: str, rec: Record) -> str:
    """The log stream for ``rec``: ``template`` filled in, made valid for CloudWatch."""
    name = template.format(run_id=rec.run_id, host=rec.host, process=rec.process)
    name = name.replace(":", "_").replace("*", "_")
    return name[:512] or "workflow-traces"


def _message_dict(rec: Record) -> dict[str, Any]:
    d: dict[str, Any] = {
        "timestamp": iso_utc(rec.time_ns),
        "level": rec.level,
        "message": rec.message,
        "run_id": rec.run_id,
    }
    for key, index in _OPTIONAL:
        value = rec[index]
        if value is not None:
            d[key] = value
    d["host"] = rec.host
    d["record_id"] = rec.record_id
    if rec.kind != "log":
        for key, index in _EVENT:
            value = rec[index]
            if value is not None:
                d[key] = value
    if rec.extras:
        d["extras"] = rec.extras
    if rec.filename:
        d["source"] = f"{rec.filename}:{rec.lineno} {rec.func_name}"
    return d


def cloudwatch_message(rec: Record, max_bytes: int = CLOUDWATCH_MAX_EVENT_BYTES) -> str:
    """The event message for ``rec``: compact JSON, at most ``max_bytes`` in UTF-8."""
    d = _message_dict(rec)
    data = dumps(d)
    if len(data) <= max_bytes:
        return data.decode()
    d["truncated"] = True
    for key in ("exc_traceback", "message"):
        if key in d:
            d[key] = truncate_utf8(str(d[key]), max(256, max_bytes // 4))
    data = dumps(d)
    if len(data) > max_bytes:
        d.pop("extras", None)
        data = dumps(d)
    return truncate_utf8(data.decode(), max_bytes)


def _escaped(text: str) -> str:
    """``text`` as the inside of a JSON string literal."""
    return dumps(text).decode()[1:-1]


def _template(rec: Record) -> tuple[tuple[str, ...], int] | None:
    """For ``rec``'s context: the message with holes for the timestamp, the message and the
    record_id, escaped as the inside of the event's message string; and its size unescaped,
    holes left out."""
    d = _message_dict(rec._replace(message=hole(1), record_id=hole(2)))
    d["timestamp"] = hole(0)
    parts = template(d, 3)
    if parts is None:
        return None
    return tuple(_escaped(part) for part in parts), sum(utf8_len(part) for part in parts)


_contexts = Contexts(_template)


def _nested(text: str) -> tuple[str, int]:
    """``text`` as a JSON string literal escaped to sit inside the event's message string, and
    the literal's size in UTF-8."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'\\"{text}\\"', len(text) + 2
    literal = json_text(text)
    return _escaped(literal), utf8_len(literal)


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
    names: dict[tuple[str, str, int], str] = {}
    for rec in batch:
        where = (rec.run_id, rec.host, rec.process)
        name = names.get(where)
        if name is None:
            name = names[where] = stream_name(log_stream, rec)
        streams.setdefault(name, []).append(rec)
    limit = CLOUDWATCH_MAX_EVENT_BYTES - CLOUDWATCH_EVENT_OVERHEAD
    room = limit - 64
    get = _contexts.get
    requests: list[Request] = []
    for stream, recs in streams.items():
        events: list[str] = []
        records: list[Record] = []
        size = 0
        first = 0
        for rec in sorted(recs, key=_TIME):
            ts = rec[F_TIME_NS] // 1_000_000
            found = get(rec)
            if (
                found is not None
                and found[1] + 6 * (len(rec[F_MESSAGE]) + len(rec[F_RECORD_ID])) < room
            ):
                p, cost = found
                stamp = iso_utc(rec[F_TIME_NS])
                message, message_size = _nested(rec[F_MESSAGE])
                record_id, record_id_size = _nested(rec[F_RECORD_ID])
                cost += len(stamp) + 2 + message_size + record_id_size
                event = (
                    f'{{"timestamp":{ts},"message":"{p[0]}\\"{stamp}\\"{p[1]}{message}{p[2]}'
                    f'{record_id}{p[3]}"}}'
                )
            else:
                message = cloudwatch_message(rec, limit)
                event = dumps({"timestamp": ts, "message": message}).decode()
                cost = utf8_len(message)
            cost += CLOUDWATCH_EVENT_OVERHEAD
            if events and (
                len(events) >= max_events
                or size + cost > max_bytes
                or ts - first > CLOUDWATCH_MAX_SPAN_MS
            ):
                requests.append(_request(log_group, stream, events, records))
                events, records, size = [], [], 0
            if not events:
                first = ts
            events.append(event)
            records.append(rec)
            size += cost
        if events:
            requests.append(_request(log_group, stream, events, records))
    return requests


def _request(group: str, stream: str, events: list[str], records: list[Record]) -> Request:
    head = f'{{"logGroupName":{json_text(group)},"logStreamName":{json_text(stream)}'
    return Request(records, f'{head},"logEvents":[{",".join(events)}]}}'.encode(), stream)
