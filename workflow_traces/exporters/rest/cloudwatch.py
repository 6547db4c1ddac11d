"""CloudWatch Logs encoder: ``PutLogEvents`` request bodies (AWS JSON 1.1).

Facts from the PutLogEvents API reference: at most 10,000 events and 1,048,576 bytes per batch,
counted as the UTF-8 size of each message plus 26 bytes per event; events in chronological order
within a batch; one batch spans at most 24 hours; "each log event can be no larger than 256 KB"
(262,144 bytes, the 26 bytes counted in: the largest message is 262,118 bytes). Events more than
2 hours ahead or older than 14 days (or the group's retention) are rejected by the service,
which reports them in ``rejectedLogEventsInfo``.

Each event's message is one compact JSON object (CloudWatch Logs Insights discovers its fields):
``level``, ``message``, the run and workflow fields, ``host``, ``logger``, ``source``
(``file:line function``), exception fields, event fields, ``extras`` and ``record_id``, each left
out when it is None. The time is the event's own ``timestamp`` (Insights' ``@timestamp``, in
milliseconds), not repeated in the message. A field that the log stream's name is made of is
left out too, since every event of the stream holds it as ``@logStream``: with the default
stream ``{run_id}`` that is the run id. So a small record costs about 80 bytes, and a batch of
small records is cut by the 10,000-events limit, as CloudWatch counts it, not by the bytes. A
message too large keeps as much of the text as the 256 KB limit allows, cut where it must be and
marked ``"truncated": true``. Records are sent to the log stream named by ``log_stream``, a
template that may use ``{run_id}``, ``{host}`` and ``{process}`` (``:`` and ``*``, which stream
names cannot hold, become ``_``).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from workflow_traces.core.record import (
    F_EXTRAS,
    F_FILENAME,
    F_FUNC_NAME,
    F_KIND,
    F_LEVEL,
    F_LINENO,
    F_MESSAGE,
    F_RECORD_ID,
    F_TIME_NS,
    Record,
    RecordValues,
)
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.payload import (
    TRUNCATED_MARK,
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
    "stream_fields",
    "stream_name",
]

CLOUDWATCH_MAX_EVENTS = 10_000
CLOUDWATCH_MAX_BATCH_BYTES = 1_048_576
CLOUDWATCH_EVENT_OVERHEAD = 26
#: PutLogEvents: "Each log event can be no larger than 256 KB" (the 26 bytes included).
CLOUDWATCH_MAX_EVENT_BYTES = 256 * 1024
CLOUDWATCH_MAX_SPAN_MS = 24 * 3600 * 1000
#: The largest message of one event.
_MAX_MESSAGE = CLOUDWATCH_MAX_EVENT_BYTES - CLOUDWATCH_EVENT_OVERHEAD

_AT = Record._fields.index
_TIME = itemgetter(F_TIME_NS)
#: (key, Record field position) of the context fields, in the order they are written.
_CONTEXT = tuple(
    (key, _AT(field))
    for key, field in (
        ("run_id", "run_id"),
        ("parent_run_id", "parent_run_id"),
        ("workflow_name", "workflow_name"),
        ("job_name", "job_name"),
        ("stage_name", "stage_name"),
        ("host", "host"),
        ("logger", "logger"),
        ("exc_type", "exc_type"),
        ("exc_message", "exc_message"),
        ("exc_traceback", "exc_traceback"),
    )
)
_EVENT = tuple((field, _AT(field)) for field in ("kind", "scope", "event", "status", "duration"))
#: Fields of the message a stream name may be made of, by their placeholder.
_STREAM_FIELDS = ("run_id", "host")


def stream_name(template: str, rec: Record) -> str:
    """The log stream for ``rec``: ``template`` filled in, made valid for CloudWatch."""
    name = template.format(run_id=rec.run_id, host=rec.host, process=rec.process)
    name = name.replace(":", "_").replace("*", "_")
    return name[:512] or "workflow-traces"


def stream_fields(template: str) -> frozenset[str]:
    """The message fields that a stream named by ``template`` holds in its name, left out of
    its events' messages (the process id is never in the message)."""
    return frozenset(f for f in _STREAM_FIELDS if "{" + f + "}" in template)


def _message_dict(rec: Record, omit: frozenset[str]) -> dict[str, Any]:
    d: dict[str, Any] = {"level": rec[F_LEVEL], "message": rec[F_MESSAGE]}
    for key, index in _CONTEXT:
        value = rec[index]
        if value is not None and key not in omit:
            d[key] = value
    if rec[F_FILENAME]:
        d["source"] = f"{rec[F_FILENAME]}:{rec[F_LINENO]} {rec[F_FUNC_NAME]}"
    if rec[F_KIND] != "log":
        for key, index in _EVENT:
            value = rec[index]
            if value is not None:
                d[key] = value
    if rec[F_EXTRAS]:
        d["extras"] = rec[F_EXTRAS]
    d["record_id"] = rec[F_RECORD_ID]
    return d


def cloudwatch_message(
    rec: Record, max_bytes: int = _MAX_MESSAGE, log_stream: str = "{run_id}"
) -> str:
    """The event message for ``rec`` in a stream named by ``log_stream``: compact JSON, at most
    ``max_bytes`` in UTF-8. A message too large keeps as much of its text (then of the
    traceback) as fits, and says ``"truncated": true``."""
    d = _message_dict(rec, stream_fields(log_stream))
    data = dumps(d)
    if len(data) <= max_bytes:
        return data.decode()
    d["truncated"] = True
    # Cut the longest texts by what is over, until it fits: an escaped character takes more
    # room in the JSON than in the text, so a cut may leave a little over for the next round.
    for _ in range(8):
        excess = len(dumps(d)) - max_bytes
        if excess <= 0:
            return dumps(d).decode()
        texts = [k for k in ("message", "exc_traceback") if isinstance(d.get(k), str)]
        key = max(texts, key=lambda k: len(d[k]))
        size = len(d[key].encode("utf-8", "backslashreplace"))
        d[key] = truncate_utf8(d[key], max(0, size - excess))
        if size <= len(TRUNCATED_MARK):
            break
    d.pop("extras", None)  # what is left is too large on its own (huge extras)
    d["message"] = truncate_utf8(d["message"], max_bytes // 2)
    d.pop("exc_traceback", None)
    return truncate_utf8(dumps(d).decode(), max_bytes)


def _escaped(text: str) -> str:
    """``text`` as the inside of a JSON string literal."""
    return dumps(text).decode()[1:-1]


def _template(rec: Record, omit: frozenset[str]) -> tuple[tuple[str, ...], int] | None:
    """For ``rec``'s context: the message with holes for the message and the record_id, escaped
    as the inside of the event's message string; and its size unescaped, holes left out."""
    d = _message_dict(rec._replace(message=hole(0), record_id=hole(1)), omit)
    parts = template(d, 2)
    if parts is None:
        return None
    return tuple(_escaped(part) for part in parts), sum(utf8_len(part) for part in parts)


_contexts: dict[str, Contexts] = {}


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
    limit = _MAX_MESSAGE
    room = limit - 64
    contexts = _contexts.get(log_stream)
    if contexts is None:
        if len(_contexts) > 64:
            _contexts.clear()
        omit = stream_fields(log_stream)
        contexts = _contexts[log_stream] = Contexts(lambda rec: _template(rec, omit))
    get = contexts.get
    requests: list[Request] = []
    for stream, recs in streams.items():
        events: list[str] = []
        records: list[Record] = []
        size = 0
        first = 0
        for rec in sorted(recs, key=_TIME):
            values: RecordValues = rec  # its fields by position, as plain values
            ts: int = values[F_TIME_NS] // 1_000_000
            found = get(rec)
            text: str = values[F_MESSAGE]
            rid: str = values[F_RECORD_ID]
            if found is not None and found[1] + 6 * (len(text) + len(rid)) < room:
                p, cost = found
                message, message_size = _nested(text)
                record_id, record_id_size = _nested(rid)
                cost += message_size + record_id_size
                event = f'{{"timestamp":{ts},"message":"{p[0]}{message}{p[1]}{record_id}{p[2]}"}}'
            else:
                message = cloudwatch_message(rec, limit, log_stream)
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
