"""The config models of the built-in sink types (see ``workflow_traces.exporters.registry``).

Each field's ``description`` is its meaning in the README's key tables; the README sections are
generated from these models (``workflow_traces.settings.keytables``).
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from workflow_traces.errors import ConfigError
from workflow_traces.exporters.config import NetworkSinkConfig, SinkConfig, shown
from workflow_traces.exporters.elasticsearch.handler import DEFAULT_ES_HOSTS, DEFAULT_INDEX
from workflow_traces.exporters.file import DEFAULT_FILE_PATH
from workflow_traces.exporters.sqlite.handler import DEFAULT_SQLITE_PATH

__all__ = [
    "ElasticsearchConfig",
    "FileConfig",
    "MemoryConfig",
    "OpenSearchConfig",
    "RestAPIConfig",
    "SQLiteConfig",
]

_REST = "pip install 'workflow-traces[rest]'"


class FileConfig(SinkConfig):
    default_path_setting = "path"

    type: Literal["file"] = "file"
    path: str = Field(
        default=DEFAULT_FILE_PATH,
        description="the folder that holds one folder per run",
        json_schema_extra=shown(f"`{DEFAULT_FILE_PATH}` (`TRACE_PATH`)"),
    )
    buffer_size: int = Field(default=8192, gt=0, description="bytes per write")
    flush_interval: float = Field(default=1.0, gt=0, description="")

    def describe(self) -> str:
        return f"file {self.path}"

    def store_location(self) -> str:
        return self.path

    def remove_run(self, run_id: str) -> None:
        import shutil
        from pathlib import Path

        from workflow_traces.exporters.file import run_dir

        shutil.rmtree(run_dir(Path(self.path), run_id), ignore_errors=True)


class SQLiteConfig(SinkConfig):
    default_path_setting = "sqlite_path"

    type: Literal["sqlite"] = "sqlite"
    path: str = Field(
        default=DEFAULT_SQLITE_PATH,
        description="the database file",
        json_schema_extra=shown(f"`{DEFAULT_SQLITE_PATH}` (`TRACE_SQLITE_PATH`)"),
    )
    buffer_size: int = Field(default=100, gt=0, description="records per transaction")
    flush_interval: float = Field(default=2.0, gt=0, description="")

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def store_location(self) -> str:
        return self.path

    def remove_run(self, run_id: str) -> None:
        import sqlite3
        from contextlib import closing

        from workflow_traces.exporters.sqlite.handler import BUSY_TIMEOUT_S

        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as conn, conn:
            conn.execute("DELETE FROM traces WHERE run_id = ?", (run_id,))


class MemoryConfig(SinkConfig):
    """Records kept in memory (``workflow_traces.testing.memory_sink(name)``), for tests."""

    type: Literal["memory"] = "memory"
    name: str = Field(
        default="default",
        min_length=1,
        description="the in-memory sink to append to: `workflow_traces.testing.memory_sink(name)`",
    )
    flush_interval: float = Field(default=0.1, gt=0, description="")

    def describe(self) -> str:
        return f"memory {self.name!r}"


class RestAPIConfig(NetworkSinkConfig):
    """A REST sink (``exporters.rest.handler``). Keys that only one service uses say so."""

    type: Literal["restapi"] = "restapi"
    service_type: Literal["datadog", "grafana", "cloudwatch", "generic"] = Field(
        default="generic", description="`datadog`, `grafana`, `cloudwatch` or `generic`"
    )
    api_url: str | None = Field(
        default=None,
        validate_default=True,
        repr=False,
        description="a bare host gets `/api/v2/logs`, `/loki/api/v1/push` or `/v1/logs`",
        json_schema_extra=shown("required (not for cloudwatch)"),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Datadog: `DD-API-KEY`; otherwise a bearer token, or the basic-auth password when "
            "`username` is set"
        ),
    )
    format: Literal["json", "ndjson", "otlp"] = Field(
        default="json",
        description=(
            "generic only: `json` (an array), `ndjson`, or `otlp` (OTLP/HTTP JSON logs for any "
            "OpenTelemetry collector)"
        ),
    )
    signals: list[Literal["logs", "traces"]] = Field(
        default=["logs"],
        description=(
            "otlp only: what to send, `logs` (`/v1/logs`) and/or `traces` (a span per workflow, "
            "job and stage scope, to `/v1/traces`, sent as each scope ends)"
        ),
    )
    gzip: bool | None = Field(
        default=None,
        description="compress request bodies (cloudwatch does not take gzip)",
        json_schema_extra=shown("on for datadog, grafana, otlp; off for json/ndjson"),
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra headers (values are secrets)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="static labels: Loki stream labels, Datadog tags, OTLP resource attributes",
    )
    service: str = Field(
        default="workflow-traces",
        description="Datadog `service`, Loki `service` label, OTLP `service.name`",
    )
    verify: bool = Field(
        default=True,
        description="verify HTTPS certificates; turning it off is explicit and reported",
    )
    ca_certs: str | None = Field(default=None, description="a CA bundle file (PEM)")
    username: str | None = Field(
        default=None,
        description="Loki (or generic) basic auth user; the password is `password` (or `api_key`)",
    )
    password: SecretStr | None = Field(
        default=None, description="Loki (or generic) basic auth password (secret)"
    )
    org_id: str | None = Field(default=None, description="Loki: sent as `X-Scope-OrgID`")
    region: str | None = Field(
        default=None,
        description="CloudWatch: the AWS region",
        json_schema_extra=shown("from the URL, then `AWS_REGION`/`AWS_DEFAULT_REGION`"),
    )
    log_group: str = Field(default="workflow-traces", description="CloudWatch; created if missing")
    log_stream: str = Field(
        default="{run_id}",
        description="CloudWatch; may use `{run_id}`, `{host}`, `{process}`; created if missing",
    )
    cloudwatch_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "CloudWatch: each event as a `text` line (`INFO worker-7 load write - "
            "pipeline.py:42 loaded 20 rows`, compact: 10,000 small records fill a batch) or a "
            "`json` object (fields Logs Insights discovers, and the record_id; about 200 bytes "
            "each)"
        ),
    )
    aws_access_key_id: SecretStr | None = Field(
        default=None,
        description="CloudWatch (secret)",
        json_schema_extra=shown("botocore's usual sources"),
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        description="CloudWatch (secret)",
        json_schema_extra=shown("botocore's usual sources"),
    )
    aws_session_token: SecretStr | None = Field(
        default=None,
        description="CloudWatch (secret)",
        json_schema_extra=shown("botocore's usual sources"),
    )

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        service = info.data.get("service_type", "generic")
        if value is None:
            if service == "cloudwatch":
                return None
            raise PydanticCustomError("rest_url", f"is required for service_type {service!r}")
        scheme, sep, rest = value.partition("://")
        if scheme.lower() not in ("http", "https") or not sep or not rest.strip("/"):
            raise PydanticCustomError("rest_url", "expected an http:// or https:// URL")
        return value

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # Each format's own rules for label names (Loki, OTLP, Datadog): see exporters.rest.labels.
        from workflow_traces.exporters.rest.labels import label_name_problem

        service = info.data.get("service_type", "generic")
        fmt = info.data.get("format", "json")
        for key in value:
            problem = label_name_problem(service, fmt, key)
            if problem is not None:
                raise PydanticCustomError("rest_label", problem)
        return value

    @field_validator("log_stream")
    @classmethod
    def _check_stream(cls, value: str) -> str:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError:
            names = {"?"}
        if not value or names - {"run_id", "host", "process"}:
            raise PydanticCustomError("rest_stream", "may only use {run_id}, {host} and {process}")
        return value

    @field_validator("signals")
    @classmethod
    def _check_signals(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value:
            raise PydanticCustomError("rest_signals", "expected at least one of logs, traces")
        if "traces" in value and info.data.get("format") != "otlp":
            raise PydanticCustomError("rest_signals", "traces are sent only with format otlp")
        return list(dict.fromkeys(value))

    @field_validator("gzip")
    @classmethod
    def _check_gzip(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value and info.data.get("service_type") == "cloudwatch":
            raise PydanticCustomError("rest_gzip", "cloudwatch does not accept gzip bodies")
        return value

    def _url(self) -> str | None:
        if self.api_url:
            return self.api_url
        if self.service_type == "cloudwatch" and self.region:
            return f"https://logs.{self.region}.amazonaws.com"
        return None

    def describe(self) -> str:
        from workflow_traces.exporters.transport import safe_url

        url = self._url()
        return f"restapi ({self.service_type}) {safe_url(url) if url else '(no url)'}"

    def endpoints(self) -> list[str]:
        url = self._url()
        if url is None:
            raise ConfigError("cannot tell the endpoint to check: set api_url or region")
        return [url]

    def verify_tls(self) -> bool | str:
        return self.ca_certs or self.verify

    def requirements(self) -> list[tuple[str, str]]:
        if self.service_type == "cloudwatch":
            cloudwatch = "pip install 'workflow-traces[cloudwatch]'"
            return [("httpx", cloudwatch), ("botocore", cloudwatch)]
        return [("httpx", _REST)]


class ElasticsearchConfig(NetworkSinkConfig):
    type: Literal["elasticsearch"] = "elasticsearch"
    es_hosts: str | list[str] = Field(
        default=DEFAULT_ES_HOSTS, description="a URL, a comma-separated list or a list"
    )
    index_name: str = Field(
        default=DEFAULT_INDEX,
        description="a plain index (created with our mapping on first use), or the data stream",
    )
    username: str | None = Field(default=None, description="basic auth")
    password: SecretStr | None = Field(default=None, description="basic auth (secret)")
    buffer_size: int = Field(
        default=100,
        gt=0,
        description=(
            "documents per bulk request; a backlog goes about 1,000 documents at a time "
            "(`buffer_size` when larger)"
        ),
    )
    timeout: float = Field(default=30.0, gt=0, description="seconds per request")
    max_retries: int = Field(
        default=3,
        ge=0,
        description=(
            "retries before the circuit breaker takes over (the client's own retries are off)"
        ),
    )
    api_key: SecretStr | None = Field(
        default=None, description='an encoded key or `"id:key"` (secret)'
    )
    ca_certs: str | None = Field(
        default=None, description="CA bundle; TLS certificates are verified by default"
    )
    verify_certs: bool = Field(default=True, description="turning it off is explicit and reported")
    data_stream: bool = Field(
        default=False,
        description=(
            "write to a data stream (`op_type: create`) through an index template named after "
            "the index (priority 200)"
        ),
    )
    http_compress: bool = Field(
        default=False, description="gzip requests (costs the worker about 18 us a record)"
    )
    service_name: str | None = Field(
        default=None,
        description="ECS `service.name`",
        json_schema_extra=shown("each record's workflow_name"),
    )
    manage_index: bool = Field(
        default=True,
        description="create the index with our mapping (or the template) on first use",
    )

    def hosts(self) -> list[str]:
        hosts = self.es_hosts
        if isinstance(hosts, str):
            hosts = hosts.split(",")
        return [h.strip() for h in hosts if h.strip()]

    def describe(self) -> str:
        from workflow_traces.exporters.transport import safe_url

        return f"elasticsearch {', '.join(safe_url(h) for h in self.hosts())}"

    def endpoints(self) -> list[str]:
        return self.hosts()

    def verify_tls(self) -> bool | str:
        return self.ca_certs or self.verify_certs

    def requirements(self) -> list[tuple[str, str]]:
        return [("elasticsearch", "pip install 'workflow-traces[elasticsearch]'")]


class OpenSearchConfig(ElasticsearchConfig):
    """The OpenSearch sink: the Elasticsearch sink's keys (``es_hosts`` names the OpenSearch
    hosts), through the opensearch-py client; OpenSearch has no API keys."""

    type: Literal["opensearch"] = "opensearch"  # type: ignore[assignment]
    api_key: SecretStr | None = Field(
        default=None, description="not taken: OpenSearch has no API keys (use username/password)"
    )

    def describe(self) -> str:
        from workflow_traces.exporters.transport import safe_url

        return f"opensearch {', '.join(safe_url(h) for h in self.hosts())}"

    def requirements(self) -> list[tuple[str, str]]:
        return [("opensearchpy", "pip install 'workflow-traces[opensearch]'")]
