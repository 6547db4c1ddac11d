"""OTLP encoder: OpenTelemetry logs over HTTP in the JSON encoding (``POST /v1/logs``), so any
OpenTelemetry collector can receive our records.

Body: ``{"resourceLogs": [{"resource": {"attributes": [...]}, "scopeLogs": [{"scope": {...},
"logRecords": [...]}]}]}``. Per the OTLP/JSON mapping, 64-bit integers (``timeUnixNano``,
``intValue``) are decimal strings and keys are lowerCamelCase. Resource attributes:
``service.name``, ``host.name``, ``process.pid`` and the user's ``labels``. Each log record has
``timeUnixNano``, ``observedTimeUnixNano``, ``severityNumber`` (DEBUG 5, INFO 9, WARNING 13,
ERROR 17, CRITICAL 21, a custom level the nearest number between), ``severityText`` (the level's
name), ``body`` (the message), ``traceId`` and ``spanId`` (hex, the record's scope's span) and
``attributes``: our run
and workflow fields under their own names (``run_id``, ``parent_run_id``, ``workflow_name``,
``job_name``, ``stage_name``, ``record_id``, and for events ``kind``, ``scope``, ``event``,
``status``, ``duration``), the semantic-convention ``code.*``, ``thread.id``, ``exception.*``
and ``logger.name``, and each extra as ``extras.<key>``. NaN and the infinities go as the proto
JSON mapping writes them (``"NaN"``, ``"Infinity"``, ``"-Infinity"``). Every body parses
strictly as an ``ExportLogsServiceRequest`` of ``opentelemetry-proto`` (the tests check it).
"""

from __future__ import annotations

import math
import time
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
    utf8_len,
)

__all__ = ["OTLP_MAX_BYTES", "encode_otlp", "otlp_log_record", "otlp_value", "severity_number"]

#: Largest request body we build (uncompressed); collectors take 20 MiB by default.
OTLP_MAX_BYTES = 4 * 1024 * 1024
SCOPE = {"name": "workflow_traces", "version": "0.1.0"}


def severity_number(levelno: int) -> int:
    """The OpenTelemetry severity number nearest to a stdlib level number.

    The stdlib's levels sit on OpenTelemetry's ranges as DEBUG 5, INFO 9, WARNING 13, ERROR 17
    and CRITICAL 21 (four severity numbers for every ten level numbers); a level between them
    (a custom level such as 25) takes the number at the same place between theirs (11), rounded
    to the nearest, within TRACE 1 to FATAL4 24.
    """
    return min(24, max(1, (2 * levelno + 7) // 5))


_FLOAT_WORDS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}
_INT64 = range(-(2**63), 2**63)


def otlp_value(value: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue`` for a value (one that is not a JSON type goes as its text)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        # An int64 in the proto; a larger integer goes as its decimal text.
        return {"intValue" if value in _INT64 else "stringValue": str(value)}
    if isinstance(value, float):
        # The proto3 JSON mapping writes the values JSON has no number for as these strings.
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        return {"doubleValue": _FLOAT_WORDS.get(value, value)}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [otlp_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": _attributes(value.items())}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def _attributes(pairs: Any) -> list[dict[str, Any]]:
    return [{"key": str(k), "value": otlp_value(v)} for k, v in pairs if v is not None]


_AT = Record._fields.index
#: (attribute key, index of the Record field) for the text attributes.
_TEXT = tuple(
    (key, _AT(field))
    for key, field in (
        ("parent_run_id", "parent_run_id"),
        ("workflow_name", "workflow_name"),
        ("job_name", "job_name"),
        ("stage_name", "stage_name"),
        ("logger.name", "logger"),
        ("code.file.path", "filename"),
        ("code.function.name", "func_name"),
        ("exception.type", "exc_type"),
        ("exception.message", "exc_message"),
        ("exception.stacktrace", "exc_traceback"),
    )
)
_EVENT = tuple((field, _AT(field)) for field in ("kind", "scope", "event", "status"))


def otlp_log_record(rec: Record, observed_ns: str) -> dict[str, Any]:
    """One OTLP ``LogRecord`` for ``rec`` (attributes that are None are left out)."""
    attrs: list[dict[str, Any]] = [
        {"key": "run_id", "value": {"stringValue": rec.run_id}},
        {"key": "record_id", "value": {"stringValue": rec.record_id}},
        {"key": "thread.id", "value": {"intValue": str(rec.thread)}},
    ]
    append = attrs.append
    for key, index in _TEXT:
        value = rec[index]
        if value is not None:
            append({"key": key, "value": {"stringValue": value}})
    if rec.lineno is not None:
        append({"key": "code.line.number", "value": {"intValue": str(rec.lineno)}})
    if rec.kind != "log":
        for key, index in _EVENT:
            value = rec[index]
            if value is not None:
                append({"key": key, "value": {"stringValue": value}})
        if rec.duration is not None:
            append({"key": "duration", "value": otlp_value(rec.duration)})
    if rec.extras:
        for key, value in rec.extras.items():
            if value is not None:
                append({"key": f"extras.{key}", "value": otlp_value(value)})
    log: dict[str, Any] = {
        "timeUnixNano": str(rec.time_ns),
        "observedTimeUnixNano": observed_ns,
        "severityNumber": severity_number(rec.levelno),
        "severityText": rec.level,
        "body": {"stringValue": rec.message},
        "attributes": attrs,
    }
    if rec.trace_id is not None and rec.span_id is not None:
        # OTLP/JSON writes the ids as hex, not base64 as the proto JSON mapping would.
        log["traceId"] = rec.trace_id
        log["spanId"] = rec.span_id
    return log


def _resource(host: str, process: int, service: str, labels: Mapping[str, str]) -> bytes:
    attrs = [("service.name", service), ("host.name", host), ("process.pid", process)]
    attrs.extend(labels.items())
    return dumps({"attributes": _attributes(attrs)})


def _template(rec: Record) -> tuple[str, ...] | None:
    """The log record of ``rec``'s context with holes for the time, the observed time, the body
    and the record_id."""
    log = otlp_log_record(rec._replace(message=hole(2), record_id=hole(3)), hole(1))
    log["timeUnixNano"] = hole(0)
    return template(log, 4)


_contexts = Contexts(_template)


def encode_otlp(
    batch: Sequence[Record],
    service: str,
    labels: Mapping[str, str],
    *,
    max_bytes: int = OTLP_MAX_BYTES,
) -> list[Request]:
    """OTLP/HTTP JSON requests for ``batch``: one resource per (host, process)."""
    observed = str(time.time_ns())
    groups: dict[tuple[str, int], list[Record]] = {}
    for rec in batch:
        groups.setdefault((rec.host, rec.process), []).append(rec)
    scope = dumps(SCOPE).decode()
    get = _contexts.get
    requests = []
    for (host, process), recs in groups.items():
        resource = _resource(host, process, service, labels).decode()
        head = f'{{"resourceLogs":[{{"resource":{resource},"scopeLogs":[{{"scope":{scope}'
        head += ',"logRecords":['
        texts: list[str] = []
        for rec in recs:
            p = get(rec)
            if p is not None:
                text = (
                    f'{p[0]}"{rec[F_TIME_NS]}"{p[1]}"{observed}"{p[2]}{json_text(rec[F_MESSAGE])}{p[3]}'
                    f"{json_text(rec[F_RECORD_ID])}{p[4]}"
                )
            else:
                text = dumps(otlp_log_record(rec, observed)).decode()
            texts.append(text)
        for chunk, parts in pack_text(
            recs,
            texts,
            max_items=1 << 30,
            max_bytes=max_bytes,
            overhead=utf8_len(head) + 8,
        ):
            requests.append(Request(list(chunk), f"{head}{','.join(parts)}]}}]}}]}}".encode()))
    return requests
