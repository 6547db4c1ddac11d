"""OTLP traces encoder: one span per workflow, job and stage scope, over HTTP in the JSON encoding
(``POST /v1/traces``), from the scopes' end events. No pipeline of its own: a scope's end event
(succeeded, failed, skipped, cancelled) is a record like any other, and this encoder turns it
into the scope's span when the REST sink's ``signals`` include ``traces``.

A span: ``traceId``, ``spanId``, ``parentSpanId`` (hex, as OTLP/JSON writes ids), ``name``
(``"<scope> <name>"``), ``kind`` internal, ``startTimeUnixNano`` (the end less the duration),
``endTimeUnixNano`` (the end event's time), attributes (``workflow_name``, ``job_name``,
``stage_name``, ``run_id``, ``parent_run_id``, ``scope``, ``status``, ``attempt`` when the
adapter knows it, Prefect's ``task_run_id``), and a status: error for a failed scope, with an
``exception`` event (``exception.type``, ``exception.message``, ``exception.stacktrace``); ok for
a succeeded one; unset for skipped and cancelled ones. A span is sent when its scope ends, so a
run killed mid-way loses only the spans of the scopes still open. Every body parses strictly as
an ``ExportTraceServiceRequest`` of ``opentelemetry-proto`` (the tests check it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_traces.core.record import Record
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.otlp import OTLP_MAX_BYTES, SCOPE, otlp_value
from workflow_traces.exporters.rest.payload import Request, pack_text, utf8_len

__all__ = ["END_EVENTS", "encode_otlp_traces", "is_span_end", "otlp_span"]

#: The lifecycle events that end a scope, each one span.
END_EVENTS = frozenset({"succeeded", "failed", "skipped", "cancelled"})
_SPAN_KIND_INTERNAL = 1
_STATUS = {"succeeded": {"code": 1}, "failed": {"code": 2}}
#: Extras that describe the span (the adapters' attempt and Prefect's ids) become attributes.
_EXTRA_ATTRIBUTES = ("attempt", "task_run_id", "task_run_name", "flow_run_name")


def is_span_end(rec: Record) -> bool:
    """Whether ``rec`` ends a scope that has a span."""
    return (
        rec.kind == "event"
        and rec.event in END_EVENTS
        and rec.trace_id is not None
        and rec.span_id is not None
    )


def _name(rec: Record) -> str:
    name = {"workflow": rec.workflow_name, "job": rec.job_name}.get(rec.scope or "")
    if rec.scope == "stage":
        name = rec.stage_name
    return f"{rec.scope} {name or '?'}"


def otlp_span(rec: Record) -> dict[str, Any]:
    """The OTLP ``Span`` of the scope that end event ``rec`` ends."""
    end = rec.time_ns
    start = end - round(rec.duration * 1e9) if rec.duration and rec.duration > 0 else end
    pairs: list[tuple[str, Any]] = [
        ("run_id", rec.run_id),
        ("parent_run_id", rec.parent_run_id),
        ("workflow_name", rec.workflow_name),
        ("job_name", rec.job_name),
        ("stage_name", rec.stage_name),
        ("scope", rec.scope),
        ("status", rec.status),
        ("host.name", rec.host),
        ("process.pid", rec.process),
    ]
    extras = rec.extras if isinstance(rec.extras, dict) else {}
    pairs.extend((key, extras.get(key)) for key in _EXTRA_ATTRIBUTES)
    span: dict[str, Any] = {
        "traceId": rec.trace_id,
        "spanId": rec.span_id,
        "name": _name(rec),
        "kind": _SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [{"key": k, "value": otlp_value(v)} for k, v in pairs if v is not None],
    }
    parent = rec.parent_span_id
    if parent is not None:
        span["parentSpanId"] = parent
    if rec.event == "failed":
        status: dict[str, Any] = {"code": 2}
        if rec.exc_message:
            status["message"] = rec.exc_message
        span["status"] = status
        exc = [
            ("exception.type", rec.exc_type),
            ("exception.message", rec.exc_message),
            ("exception.stacktrace", rec.exc_traceback),
        ]
        span["events"] = [
            {
                "timeUnixNano": str(end),
                "name": "exception",
                "attributes": [
                    {"key": k, "value": {"stringValue": v}} for k, v in exc if v is not None
                ],
            }
        ]
    elif rec.event in _STATUS:
        span["status"] = _STATUS[rec.event]
    return span


def encode_otlp_traces(
    batch: Sequence[Record],
    service: str,
    labels: Mapping[str, str],
    *,
    max_bytes: int = OTLP_MAX_BYTES,
) -> list[Request]:
    """OTLP/HTTP JSON trace requests for the end events of ``batch`` (``key="traces"``, the
    target's route to ``/v1/traces``): one resource per (host, process)."""
    groups: dict[tuple[str, int], list[Record]] = {}
    for rec in batch:
        if is_span_end(rec):
            groups.setdefault((rec.host, rec.process), []).append(rec)
    scope = dumps(SCOPE).decode()
    requests = []
    for (host, process), recs in groups.items():
        attrs = [("service.name", service), ("host.name", host), ("process.pid", process)]
        attrs.extend(labels.items())
        resource = dumps({"attributes": [{"key": k, "value": otlp_value(v)} for k, v in attrs]})
        head = f'{{"resourceSpans":[{{"resource":{resource.decode()},"scopeSpans":[{{"scope":'
        head += f'{scope},"spans":['
        texts = [dumps(otlp_span(rec)).decode() for rec in recs]
        for chunk, parts in pack_text(
            recs, texts, max_items=1 << 30, max_bytes=max_bytes, overhead=utf8_len(head) + 8
        ):
            body = f"{head}{','.join(parts)}]}}]}}]}}".encode()
            requests.append(Request(list(chunk), body, "traces"))
    return requests
