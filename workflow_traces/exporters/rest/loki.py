"""Grafana Loki encoder: the push API (``POST /loki/api/v1/push``) in its JSON form.

Body: ``{"streams": [{"stream": {labels}, "values": [["<ns epoch>", "<line>", {metadata}]]}]}``;
Loki answers 204 and accepts a gzipped body (``Content-Encoding: gzip``).

Labels stay few and low-cardinality: ``service``, ``environment`` (when set), ``workflow`` (the
record's workflow name, when set), ``level``, plus the user's static ``labels``. Run ids and
every other per-record value go into structured metadata (string values), never into labels:
``run_id``, ``parent_run_id``, ``job_name``, ``stage_name``, ``record_id``, ``host``,
``logger``, ``filename``, ``lineno``, ``func_name``, ``exc_type``, ``kind``, ``scope``,
``event``, ``status``, ``duration``, ``extras`` as JSON, and the W3C ``trace_id`` and
``span_id`` (the names Loki's own OTLP ingestion gives them, so Grafana links a line to its
trace). The line is the message, followed
by the traceback when there is one; lines longer than Loki's default ``max_line_size``
(256 KB) are cut and marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflow_traces.core.record import F_MESSAGE, F_RECORD_ID, F_TIME_NS, Record
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.payload import (
    Contexts,
    Request,
    hole,
    json_text,
    template,
    truncate_utf8,
    utf8_len,
)

__all__ = ["LOKI_MAX_BYTES", "LOKI_MAX_LINE_BYTES", "encode_loki", "loki_labels", "loki_value"]

#: Largest push body we build (uncompressed).
LOKI_MAX_BYTES = 4 * 1024 * 1024
#: Loki's default ``max_line_size``.
LOKI_MAX_LINE_BYTES = 256 * 1024

_AT = Record._fields.index
_META = tuple(
    (field, _AT(field))
    for field in (
        "parent_run_id",
        "job_name",
        "stage_name",
        "record_id",
        "host",
        "logger",
        "filename",
        "lineno",
        "func_name",
        "exc_type",
        "trace_id",
        "span_id",
    )
)
_EVENT_META = tuple(
    (field, _AT(field)) for field in ("kind", "scope", "event", "status", "duration")
)


def loki_labels(rec: Record, base: Mapping[str, str]) -> dict[str, str]:
    """The stream labels of ``rec``: ``base`` (service, environment, user labels), workflow and
    level."""
    labels = dict(base)
    if rec.workflow_name is not None:
        labels["workflow"] = rec.workflow_name
    labels["level"] = rec.level.lower()
    return labels


def loki_value(rec: Record, max_line: int = LOKI_MAX_LINE_BYTES) -> list[object]:
    """``[ns, line, structured metadata]`` for ``rec``."""
    line = rec.message
    if rec.exc_traceback:
        line = f"{line}\n{rec.exc_traceback}"
    line = truncate_utf8(line, max_line)
    meta: dict[str, str] = {"run_id": rec.run_id}
    for key, index in _META:
        value = rec[index]
        if value is not None:
            meta[key] = value if value.__class__ is str else str(value)
    if rec.kind != "log":
        for key, index in _EVENT_META:
            value = rec[index]
            if value is not None:
                meta[key] = str(value)
    if rec.extras:
        meta["extras"] = dumps(rec.extras).decode()
    return [str(rec.time_ns), line, meta]


def _template(rec: Record) -> tuple[str, ...] | None:
    """The value of ``rec``'s context with holes for the time, the line and the record_id; None
    when the line is more than the message (a traceback follows it)."""
    if rec.exc_traceback:
        return None
    value = loki_value(rec._replace(message=hole(1), record_id=hole(2)))
    value[0] = hole(0)
    return template(value, 3)


_contexts = Contexts(_template)


def _body(streams: dict[str, list[str]]) -> bytes:
    parts = [
        f'{{"stream":{labels},"values":[{",".join(values)}]}}' for labels, values in streams.items()
    ]
    return f'{{"streams":[{",".join(parts)}]}}'.encode()


def encode_loki(
    batch: Sequence[Record],
    base_labels: Mapping[str, str],
    *,
    max_bytes: int = LOKI_MAX_BYTES,
    max_line: int = LOKI_MAX_LINE_BYTES,
) -> list[Request]:
    """Push requests for ``batch``: records grouped into streams by label set, each stream's
    values in time order, each body at most about ``max_bytes``."""
    requests: list[Request] = []
    streams: dict[str, list[str]] = {}
    records: list[Record] = []
    size = 16
    label_cache: dict[tuple[str | None, str], str] = {}
    get = _contexts.get
    room = max_line // 6  # at most 6 bytes a character once escaped: no need to cut
    for rec in sorted(batch, key=lambda r: r.time_ns):
        key = (rec.workflow_name, rec.level)
        labels = label_cache.get(key)
        if labels is None:
            labels = label_cache[key] = dumps(loki_labels(rec, base_labels)).decode()
        message = rec[F_MESSAGE]
        p = get(rec) if len(message) <= room else None
        if p is not None:
            record_id = json_text(rec[F_RECORD_ID])
            value = f'{p[0]}"{rec[F_TIME_NS]}"{p[1]}{json_text(message)}{p[2]}{record_id}{p[3]}'
        else:
            value = dumps(loki_value(rec, max_line)).decode()
        length = utf8_len(value)
        extra = length + 1 + (0 if labels in streams else utf8_len(labels) + 24)
        if records and size + extra > max_bytes:
            requests.append(Request(records, _body(streams)))
            streams, records, size = {}, [], 16
            extra = length + utf8_len(labels) + 24
        streams.setdefault(labels, []).append(value)
        records.append(rec)
        size += extra
    if records:
        requests.append(Request(records, _body(streams)))
    return requests
