"""How the REST sink reaches one service: the ``Target`` protocol, the plain HTTP target
(datadog, grafana, generic, otlp), and building the target a ``RestAPIConfig`` names, with its
URL, headers and encoder (CloudWatch's target is in ``cloudwatch_http``).

Imports neither httpx nor pydantic at import time."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

from workflow_traces.core.record import Record
from workflow_traces.errors import ConfigError
from workflow_traces.pipeline.retry import PermanentError

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

    from workflow_traces.exporters.rest.payload import Request
    from workflow_traces.settings.config import RestAPIConfig

__all__ = ["DEFAULT_PATHS", "HttpTarget", "Target", "endpoint", "make_target", "traces_endpoint"]

#: The path each service gets when ``api_url`` names only a host.
DEFAULT_PATHS = {"datadog": "/api/v2/logs", "grafana": "/loki/api/v1/push", "otlp": "/v1/logs"}


class Target(Protocol):
    """How the exporter talks to one service."""

    def encode(self, batch: Sequence[Record]) -> list[Request]: ...

    def send(self, client: httpx.Client, req: Request) -> tuple[int, BaseException | None]:
        """Send one request. Returns (records the service refused, why); raises
        RetryableError / PayloadTooLargeError / PermanentError for the whole request."""
        ...

    def after_fork(self) -> None: ...


class HttpTarget:
    """A service that takes a POST of the encoded body: datadog, grafana, generic, otlp."""

    def __init__(
        self,
        url: str,
        encode: Callable[[Sequence[Record]], list[Request]],
        headers: dict[str, str],
        gzip: bool,
        otlp: bool = False,
        traces_url: str | None = None,
    ) -> None:
        self.url = url
        #: Where requests routed "traces" (OTLP spans) go.
        self.traces_url = traces_url or url
        self._encode = encode
        self.headers = headers
        self.gzip = gzip
        self.otlp = otlp

    def encode(self, batch: Sequence[Record]) -> list[Request]:
        return self._encode(batch)

    def send(self, client: httpx.Client, req: Request) -> tuple[int, BaseException | None]:
        from workflow_traces.exporters.rest.http import check_status, post

        url = self.traces_url if req.key == "traces" else self.url
        response = post(client, url, req.body, self.headers, self.gzip)
        check_status(response)
        if self.otlp and response.content:
            return _otlp_partial(response.content, len(req.records), req.key == "traces")
        return 0, None

    def after_fork(self) -> None:
        return None


def _otlp_partial(
    content: bytes, count: int, spans: bool = False
) -> tuple[int, BaseException | None]:
    """OTLP's ``partialSuccess``: how many log records (or spans) the collector refused, and
    why."""
    import orjson

    try:
        answer = orjson.loads(content)
        partial_success = answer.get("partialSuccess") or {}
        key = "rejectedSpans" if spans else "rejectedLogRecords"
        rejected = int(partial_success.get(key) or 0)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0, None
    if rejected <= 0:
        return 0, None
    why = str(partial_success.get("errorMessage") or "")[:200]
    return min(rejected, count), PermanentError(f"collector rejected {rejected} records: {why}")


# -- building ------------------------------------------------------------------------------------
def endpoint(url: str, kind: str) -> str:
    """``url``, with the service's usual path when it names only a host."""
    parts = urlsplit(url)
    if parts.path in ("", "/") and kind in DEFAULT_PATHS:
        parts = parts._replace(path=DEFAULT_PATHS[kind])
    return urlunsplit(parts)


def _secret(value: SecretStr | str | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.get_secret_value()


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _headers(cfg: RestAPIConfig, content_type: str) -> dict[str, str]:
    headers = {"Content-Type": content_type}
    key = _secret(cfg.api_key)
    password = _secret(cfg.password)
    kind = cfg.service_type
    if kind == "datadog":
        if key:
            headers["DD-API-KEY"] = key
    elif cfg.username:
        headers["Authorization"] = _basic(cfg.username, password or key or "")
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    if cfg.org_id:
        headers["X-Scope-OrgID"] = cfg.org_id
    headers.update({k: v.get_secret_value() for k, v in cfg.headers.items()})
    return headers


def make_target(cfg: RestAPIConfig, environment: str | None) -> tuple[Target, str]:
    """The target for ``cfg`` and the sink's name (no secrets: no user info, no query)."""
    from workflow_traces.exporters.transport import safe_url

    kind = cfg.service_type
    if kind == "cloudwatch":
        from workflow_traces.exporters.rest.cloudwatch_http import CloudWatchTarget, resolve_region

        region = resolve_region(cfg.region, cfg.api_url)
        url = cfg.api_url or f"https://logs.{region}.amazonaws.com/"
        static = None
        if cfg.aws_access_key_id is not None or cfg.aws_secret_access_key is not None:
            if cfg.aws_access_key_id is None or cfg.aws_secret_access_key is None:
                raise ConfigError(
                    "aws_secret_access_key: give both aws_access_key_id and "
                    "aws_secret_access_key, or neither"
                )
            static = (
                cfg.aws_access_key_id.get_secret_value(),
                cfg.aws_secret_access_key.get_secret_value(),
                _secret(cfg.aws_session_token),
            )
        cloudwatch = CloudWatchTarget(
            url, region, cfg.log_group, cfg.log_stream, static, fmt=cfg.cloudwatch_format
        )
        return cloudwatch, f"restapi:cloudwatch:{safe_url(url)}#{cfg.log_group}"
    assert cfg.api_url is not None  # checked by the config
    labels = dict(cfg.labels)
    encode: Callable[[Sequence[Record]], list[Request]]
    content_type = "application/json"
    flavour: str = kind
    if kind == "datadog":
        from workflow_traces.exporters.rest.datadog import datadog_tags, encode_datadog

        tags = datadog_tags(labels, environment)
        encode = partial(encode_datadog, service=cfg.service, tags=tags)
    elif kind == "grafana":
        from workflow_traces.exporters.rest.loki import encode_loki

        base = {"service": cfg.service}
        if environment is not None:
            base["environment"] = environment
        base.update(labels)
        encode = partial(encode_loki, base_labels=base)
    elif cfg.format == "otlp":
        if environment is not None:
            labels.setdefault("deployment.environment.name", environment)
        encode = _otlp_encoder(cfg.signals, cfg.service, labels)
        flavour = "otlp"
    else:
        from workflow_traces.exporters.rest.generic import CONTENT_TYPES, encode_generic

        encode = partial(encode_generic, fmt=cfg.format)
        content_type, flavour = CONTENT_TYPES[cfg.format], f"generic/{cfg.format}"
    url = endpoint(cfg.api_url, "otlp" if flavour == "otlp" else kind)
    gzip = cfg.gzip if cfg.gzip is not None else kind in ("datadog", "grafana") or flavour == "otlp"
    traces_url = traces_endpoint(url) if "traces" in cfg.signals else None
    target = HttpTarget(
        url, encode, _headers(cfg, content_type), gzip, flavour == "otlp", traces_url
    )
    return target, f"restapi:{flavour}:{safe_url(url)}"


def traces_endpoint(logs_url: str) -> str:
    """The OTLP traces URL beside a logs URL: ``.../v1/logs`` becomes ``.../v1/traces``; any
    other path gets ``/v1/traces`` in its place."""
    parts = urlsplit(logs_url)
    logs = parts.path.endswith("/v1/logs")
    path = parts.path[: -len("logs")] + "traces" if logs else "/v1/traces"
    return urlunsplit(parts._replace(path=path))


def _otlp_encoder(
    signals: Sequence[str], service: str, labels: dict[str, str]
) -> Callable[[Sequence[Record]], list[Request]]:
    """The OTLP encoder of ``signals``: log requests, span requests (routed "traces"), or both
    (the spans first, so a scope's span and its end event's log line go out together)."""
    from workflow_traces.exporters.rest.otlp import encode_otlp
    from workflow_traces.exporters.rest.otlp_traces import encode_otlp_traces

    logs = "logs" in signals
    traces = "traces" in signals

    def encode(batch: Sequence[Record]) -> list[Request]:
        out = encode_otlp_traces(batch, service, labels) if traces else []
        if logs:
            out.extend(encode_otlp(batch, service, labels))
        return out

    return encode
