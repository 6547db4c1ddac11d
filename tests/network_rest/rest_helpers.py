"""Helpers shared by the REST sink tests (imported by name: tests/network_rest is on sys.path)."""

from __future__ import annotations

from typing import Any

from local_services import LocalReceiver

#: Settings that keep retries and probes short, so fault tests run in seconds.
FAST: dict[str, Any] = {
    "flush_interval": 0.05,
    "retry_base_delay": 0.02,
    "retry_max_delay": 0.25,
    "timeout": 3.0,
}


def service_kwargs(service: str) -> dict[str, Any]:
    """RestAPIHandler keys for a LocalReceiver service name."""
    if service == "otlp":
        return {"service_type": "generic", "format": "otlp"}
    return {"service_type": service}


def message_of(service: str, record: dict[str, Any]) -> str:
    """The log message inside one record decoded by a LocalReceiver."""
    if service == "grafana":
        return str(record["line"]).split("\n", 1)[0]
    if service == "otlp":
        return str(record["body"]["stringValue"])
    return str(record["message"])


def messages(receiver: LocalReceiver) -> list[str]:
    return [message_of(receiver.service, rec) for rec in receiver.records()]


def logs_client(url: str) -> Any:
    """A botocore CloudWatch Logs client for moto, to read back what the sink wrote."""
    import botocore.session

    return botocore.session.get_session().create_client(
        "logs",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


AWS = {"region": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
