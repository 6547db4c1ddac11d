"""CloudWatch Logs encoder: ``PutLogEvents`` request bodies (AWS JSON 1.1).

Facts from the PutLogEvents API reference: at most 10,000 events and 1,048,576 bytes per batch,
counted as the UTF-8 size of each message plus 26 bytes per event; events in chronological order
within a batch; one batch spans at most 24 hours; "each log event can be no larger than 256 KB"
(262,144 bytes, the 26 bytes counted in: the largest message is 262,118 bytes). Events more than
2 hours ahead or older than 14 days (or the group's retention) are rejected by the service,
which reports them in ``rejectedLogEventsInfo``.

Two event formats, chosen by the sink's ``cloudwatch_format``:

``"text"`` (the default): one line, space-separated fields in a fixed order, then the message::

    INFO worker-7 load write - pipeline.py:42 loaded 20 rows

level, host, job, stage, logger, source (the file's base name and line), message; ``-`` for a
field that is not set; a field holding a space, a quote or a control character (or ``-``
itself) is written as a JSON string (``"nightly etl"``). When the stream's name does not hold
``{run_id}``, the run id and the workflow name come right after the level; a stream named with
``{host}`` leaves the host out. Below the message: the traceback (or ``Type: message``), then
``extras: {...}`` as JSON. Why text by default: 10,000 events fit in a 1,048,576-byte batch
only at 78 bytes of message or less (1,048,576 / 10,000 - 26). The JSON object of a small real
record (level, message, job, stage, host, source, record_id) takes about 200 bytes, and even
with one-letter keys and no record id it takes 92; the line above takes 56. So with the default
the 10,000-events limit cuts batches of small records, not the bytes. The line drops what the
stream already says (the run id is ``@logStream``; the workflow name, constant within a run,
is in an adapter's ``workflow 'etl' started`` line), the time (the event's own ``timestamp``,
``@timestamp``), the function name and the directory of the source, the process, the event
fields of lifecycle lines (their message says them: ``job 'load' succeeded in 1.234s``) and the
record_id (CloudWatch does not dedupe by it). Logs Insights reads the fields with ``parse`` (a
query is in the README); CloudWatch metric filters read them as a space-delimited pattern.

``"json"``: one compact JSON object per event, whose fields Logs Insights discovers by itself:
``level``, ``message``, the run and workflow fields, ``host``, ``logger``, ``source``
(``file:line function``), exception fields, event fields, ``extras`` and ``record_id``, each left
out when it is None, and so are the fields the stream's name holds. A small record takes about
200 bytes, so its batches are cut by the bytes, about 4,500 events each.

Either way a message too large keeps as much of the text as the 256 KB limit allows, cut where
it must be and marked (``...[truncated]``; JSON also says ``"truncated": true``). Records are
sent to the log stream named by ``log_stream``, a template that may use ``{run_id}``, ``{host}``
and ``{process}`` (``:`` and ``*``, which stream names cannot hold, become ``_``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

from workflow_traces.core.record import (
    F_EXC_MESSAGE,
    F_EXC_TRACEBACK,
    F_EXC_TYPE,
    F_EXTRAS,
    F_FILENAME,
    F_FUNC_NAME,
    F_HOST,
    F_JOB_NAME,
    F_KIND,
    F_LEVEL,
    F_LINENO,
    F_LOGGER,
    F_MESSAGE,
    F_RECORD_ID,
    F_RUN_ID,
    F_STAGE_NAME,
    F_TIME_NS,
    F_WORKFLOW_NAME,
    PARENT_SPAN_KEY,
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
    "CloudWatchFormat",
    "cloudwatch_message",
    "cloudwatch_text",
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
#: The event formats: see the module's notes.
CloudWatchFormat = Literal["text", "json"]
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


# -- the text format -----------------------------------------------------------------------------
def _token(value: str | None) -> str:
    """One field of a text line: ``-`` when not set; a JSON string when it holds a space, a
    quote, a control character or is empty or ``-``; else the value itself."""
    if value is None:
        return "-"
    if value and value != "-" and value.isprintable() and " " not in value and '"' not in value:
        return value
    return dumps(value).decode()


def _head(values: RecordValues, run: bool, host: bool) -> str:
    """The fields of a text line before its source: level, [run id, workflow], [host], job,
    stage, logger; each followed by a space."""
    fields = [values[F_LEVEL]]
    if run:
        fields += (values[F_RUN_ID], values[F_WORKFLOW_NAME])
    if host:
        fields.append(values[F_HOST])
    fields += (values[F_JOB_NAME], values[F_STAGE_NAME], values[F_LOGGER])
    return "".join(_token(f) + " " for f in fields)


def _source(values: RecordValues) -> str:
    filename: str | None = values[F_FILENAME]
    if not filename:
        return "-"
    return _token(f"{os.path.basename(filename)}:{values[F_LINENO]}")


def _tail(values: RecordValues) -> str:
    """What follows the message on lines of its own: the traceback, then the extras."""
    tail = ""
    traceback: str | None = values[F_EXC_TRACEBACK]
    if traceback:
        tail += "\n" + traceback.rstrip("\n")
    elif values[F_EXC_TYPE]:
        tail += f"\n{values[F_EXC_TYPE]}: {values[F_EXC_MESSAGE] or ''}"
    extras = values[F_EXTRAS]
    if extras and PARENT_SPAN_KEY in extras:  # an event's span link: no use in a text line
        extras = {k: v for k, v in extras.items() if k != PARENT_SPAN_KEY}
    if extras:
        tail += "\nextras: " + dumps(extras).decode()
    return tail


def cloudwatch_text(
    rec: Record, max_bytes: int = _MAX_MESSAGE, log_stream: str = "{run_id}"
) -> str:
    """The text event message for ``rec`` in a stream named by ``log_stream``, at most
    ``max_bytes`` in UTF-8 (see the module's notes for its layout). A message too large keeps
    as much of its text as fits, marked ``...[truncated]``."""
    omit = stream_fields(log_stream)
    values: RecordValues = rec
    head = _head(values, "run_id" not in omit, "host" not in omit)
    text = f"{head}{_source(values)} {values[F_MESSAGE]}{_tail(values)}"
    return truncate_utf8(text, max_bytes)


def _text_size(text: str) -> int:
    """The UTF-8 size of ``text`` as it is sent (a lone surrogate is sent escaped, as text)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "backslashreplace"))


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
    fmt: CloudWatchFormat = "text",
    max_events: int = CLOUDWATCH_MAX_EVENTS,
    max_bytes: int = CLOUDWATCH_MAX_BATCH_BYTES,
) -> list[Request]:
    """PutLogEvents bodies for ``batch``, its events in the format ``fmt``: one or more per
    log stream, events sorted by time, each within the count, size and 24-hour limits.
    ``Request.key`` is the stream's name."""
    streams: dict[str, list[Record]] = {}
    names: dict[tuple[str, str, int], str] = {}
    for rec in batch:
        where = (rec.run_id, rec.host, rec.process)
        name = names.get(where)
        if name is None:
            name = names[where] = stream_name(log_stream, rec)
        streams.setdefault(name, []).append(rec)
    event = _text_events(log_stream) if fmt == "text" else _json_events(log_stream)
    requests: list[Request] = []
    for stream, recs in streams.items():
        events: list[str] = []
        records: list[Record] = []
        size = 0
        first = 0
        for rec in sorted(recs, key=_TIME):
            ts: int = rec[F_TIME_NS] // 1_000_000
            text, cost = event(rec, ts)
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
            events.append(text)
            records.append(rec)
            size += cost
        if events:
            requests.append(_request(log_group, stream, events, records))
    return requests


#: Makes one event: (record, its timestamp in ms) -> (the event's JSON, its message's size).
_Event = Callable[[Record, int], tuple[str, int]]


def _text_events(log_stream: str) -> _Event:
    """The text events of a stream named by ``log_stream``: each line's fields before its
    source are made once per context (level, run, host, scope, logger) of the batch."""
    omit = stream_fields(log_stream)
    run, host = "run_id" not in omit, "host" not in omit
    heads: dict[tuple[Any, ...], str] = {}

    def event(rec: Record, ts: int) -> tuple[str, int]:
        values: RecordValues = rec  # its fields by position, as plain values
        where = (
            values[F_LEVEL],
            values[F_RUN_ID],
            values[F_WORKFLOW_NAME],
            values[F_HOST],
            values[F_JOB_NAME],
            values[F_STAGE_NAME],
            values[F_LOGGER],
        )
        head = heads.get(where)
        if head is None:
            head = heads[where] = _head(values, run, host)
        text = f"{head}{_source(values)} {values[F_MESSAGE]}"
        if values[F_EXTRAS] or values[F_EXC_TYPE] or values[F_EXC_TRACEBACK]:
            text += _tail(values)
        size = _text_size(text)
        if size > _MAX_MESSAGE:
            text = truncate_utf8(text, _MAX_MESSAGE)
            size = _text_size(text)
        return f'{{"timestamp":{ts},"message":{json_text(text)}}}', size

    return event


def _json_events(log_stream: str) -> _Event:
    """The JSON events of a stream named by ``log_stream``: a record whose context was seen
    before fills that context's template (its message and record_id escaped twice over)."""
    limit = _MAX_MESSAGE
    room = limit - 64
    contexts = _contexts.get(log_stream)
    if contexts is None:
        if len(_contexts) > 64:
            _contexts.clear()
        omit = stream_fields(log_stream)
        contexts = _contexts[log_stream] = Contexts(lambda rec: _template(rec, omit))
    get = contexts.get

    def event(rec: Record, ts: int) -> tuple[str, int]:
        values: RecordValues = rec  # its fields by position, as plain values
        found = get(rec)
        text: str = values[F_MESSAGE]
        rid: str = values[F_RECORD_ID]
        if found is not None and found[1] + 6 * (len(text) + len(rid)) < room:
            p, cost = found
            message, message_size = _nested(text)
            record_id, record_id_size = _nested(rid)
            body = f'{{"timestamp":{ts},"message":"{p[0]}{message}{p[1]}{record_id}{p[2]}"}}'
            return body, cost + message_size + record_id_size
        whole = cloudwatch_message(rec, limit, log_stream)
        return dumps({"timestamp": ts, "message": whole}).decode(), utf8_len(whole)

    return event


def _request(group: str, stream: str, events: list[str], records: list[Record]) -> Request:
    head = f'{{"logGroupName":{json_text(group)},"logStreamName":{json_text(stream)}'
    return Request(records, f'{head},"logEvents":[{",".join(events)}]}}'.encode(), stream)
