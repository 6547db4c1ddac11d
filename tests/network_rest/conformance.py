"""Each service's own published code as the judge of our bodies (imported by name:
tests/network_rest is on sys.path). ``opentelemetry-proto`` parses OTLP bodies strictly (an
unknown field, a wrong type or a bad enum is an error); ``datadog-api-client`` deserializes
Datadog bodies into its ``HTTPLog``/``HTTPLogItem`` models. The ``receivers`` fixture runs these
on every body a test's receivers got, so every OTLP and Datadog body the REST tests produce is
checked."""

from __future__ import annotations

from typing import Any

import orjson

#: Datadog's statuses (the syslog severities its status remapper knows, plus "ok").
DATADOG_STATUSES = frozenset(
    {"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "ok"}
)


def otlp_request(body: bytes) -> Any:
    """``body`` parsed strictly as an OTLP ``ExportLogsServiceRequest``."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    return json_format.Parse(body, ExportLogsServiceRequest())


def datadog_items(body: bytes) -> list[Any]:
    """``body`` deserialized with datadog-api-client's models, type-checked: one HTTPLogItem
    per log, each with a message and a documented status."""
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v2.model.http_log import HTTPLog
    from datadog_api_client.v2.model.http_log_item import HTTPLogItem

    with ApiClient(Configuration()) as client:
        logs = client.deserialize(body.decode(), (HTTPLog,), True)
    assert isinstance(logs, HTTPLog)
    items = list(logs.value)
    raw = orjson.loads(body)
    assert len(items) == len(raw)
    for item, entry in zip(items, raw, strict=True):
        assert isinstance(item, HTTPLogItem)
        assert isinstance(item.message, str) and item.message == entry["message"]
        assert entry["status"] in DATADOG_STATUSES, entry["status"]
        assert item.ddtags == entry.get("ddtags", item.ddtags)
    return items


def check_body(service: str, body: bytes) -> None:
    """Check one body our sink sent to a receiver of ``service`` with the service's own code."""
    if not body:
        return
    if service == "otlp":
        otlp_request(body)
    elif service == "datadog":
        datadog_items(body)
