"""The REST sink: ``RestAPIHandler`` sends records to Datadog, Grafana Loki, CloudWatch Logs, or
any HTTP endpoint (a JSON array, NDJSON, or OTLP/HTTP JSON logs).

The handler is a ``BufferedHandler``: the caller only queues records. The sink's worker encodes
each batch with the service's encoder (``_encode_<service>``) and POSTs it with one
``httpx.Client`` (keep-alive) per sink, made on the worker the first time it is needed. Retries,
the circuit breaker and the spool are the channel's (``NetworkRetryPolicy``, ``_delivery``).

This module imports neither httpx nor pydantic at import time: ``import workflow_traces`` stays
light.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from workflow_traces.core.record import Record
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.exporters.rest.partial import PartialDeliveries
from workflow_traces.exporters.transport import backlog_group, report_insecure_transport
from workflow_traces.pipeline.bounds import NETWORK_QUEUE_BYTES
from workflow_traces.pipeline.channel import DEFAULT_QUEUE_SIZE, Overflow
from workflow_traces.pipeline.handler import BufferedHandler, from_sink_config
from workflow_traces.pipeline.retry import (
    DEFAULT_SPOOL_MAX_BYTES,
    NetworkRetryPolicy,
    PermanentError,
    RetryableError,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

    from workflow_traces.exporters.rest.payload import Request
    from workflow_traces.settings.config import RestAPIConfig

__all__ = ["RestAPIHandler", "RestExporter"]

USER_AGENT = "workflow-traces/0.1.0"

#: When a backlog waits, the worker hands the exporter this many records at once (``buffer_size``
#: when larger), and the encoder packs them into as few requests as the service's limits allow:
#: Datadog takes at most 1,000 entries a request, CloudWatch 10,000 events; Loki, OTLP and the
#: generic formats are bounded by bytes. Each request costs the worker about 0.4 ms of Python
#: (httpx), 8 us a record at 50 records a request.
BACKLOG_RECORDS = 1000

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


class RestExporter(Exporter):
    """Encodes a batch for its target and sends it, one request after another.

    A record can ride in more than one request (an OTLP end event is a log record on
    ``/v1/logs`` and a span on ``/v1/traces``): when one fails, the records handed back for
    retry are sent again only in the requests that did not carry them
    (:class:`~workflow_traces.exporters.rest.partial.PartialDeliveries`)."""

    def __init__(
        self,
        target: Target,
        name: str,
        *,
        timeout: float,
        verify: bool = True,
        ca_certs: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.target = target
        self.name = name
        self.timeout = timeout
        self.verify = verify
        self.ca_certs = ca_certs
        self.transport = transport
        self._client: httpx.Client | None = None
        self._partial = PartialDeliveries()

    def _open(self) -> httpx.Client:
        import httpx

        verify: ssl.SSLContext | bool = self.verify
        if self.verify and self.ca_certs:
            verify = ssl.create_default_context(cafile=self.ca_certs)
        self._client = httpx.Client(
            timeout=self.timeout,
            verify=verify,
            transport=self.transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        return self._client

    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        from workflow_traces.pipeline.retry import PayloadTooLargeError

        client = self._client or self._open()
        partial = self._partial
        prior = partial.take(batch)
        try:
            requests = partial.encode(self.target.encode, batch, prior)
        except Exception as exc:  # encoding cannot succeed later: never hold records for it
            raise PermanentError(f"cannot encode the batch: {type(exc).__name__}: {exc}") from exc
        rejected = 0
        why: BaseException | None = None
        for index, req in enumerate(requests):
            try:
                refused, reason = self.target.send(client, req)
            except (RetryableError, PayloadTooLargeError) as exc:
                retry = partial.hand_back(requests, index, prior)
                return ExportResult(retry=retry, rejected=rejected, error=exc)
            except PermanentError as exc:
                rejected += len(req.records)
                why = exc
                continue
            if refused:
                rejected += refused
                why = reason
        if rejected:
            return ExportResult(rejected=rejected, error=why)
        return None

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def after_fork(self) -> None:
        # The parent's connections are not ours to use or close (a TLS close would break the
        # parent's session): forget them.
        self._client = None
        self._partial = PartialDeliveries()  # the parent's retries are not this process's
        self.target.after_fork()


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


def _config(**values: Any) -> RestAPIConfig:
    from workflow_traces.settings.config import RestAPIConfig, validate_handler

    cfg = validate_handler({"type": "restapi", **values})
    assert isinstance(cfg, RestAPIConfig)
    return cfg


class RestAPIHandler(BufferedHandler):
    """Sends records to a REST logging service: ``service_type`` is "datadog", "grafana"
    (Loki), "cloudwatch" or "generic" (``format`` "json", "ndjson" or "otlp").

    ``buffer_size`` is in records: the records per request; when a backlog waits, about
    :data:`BACKLOG_RECORDS` (``buffer_size`` when larger) go at once, in as few requests as the
    service's limits allow. The worker sends at least every ``flush_interval`` seconds. A full
    buffer drops new records by default (``overflow="drop"``, counted and reported) so that an
    outage never blocks the caller.
    ``transport`` takes an ``httpx`` transport (for unit tests, e.g. ``httpx.MockTransport``).
    """

    def __init__(
        self,
        run_id: str,
        parent_run_id: str | None = None,
        api_url: str | None = None,
        api_key: SecretStr | str | None = None,
        service_type: str = "generic",
        extras: dict[str, Any] | None = None,
        *,
        buffer_size: int = 50,
        flush_interval: float = 2.0,
        timeout: float = 10.0,
        max_retries: int = 3,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = NETWORK_QUEUE_BYTES,
        overflow: Overflow = "drop",
        block_timeout: float = 1.0,
        fail_silently: bool = True,
        level: int | str = logging.NOTSET,
        format: str = "json",
        signals: Sequence[str] = ("logs",),
        gzip: bool | None = None,
        headers: Mapping[str, SecretStr | str] | None = None,
        labels: Mapping[str, str] | None = None,
        service: str = "workflow-traces",
        verify: bool = True,
        ca_certs: str | None = None,
        username: str | None = None,
        password: SecretStr | str | None = None,
        org_id: str | None = None,
        region: str | None = None,
        log_group: str = "workflow-traces",
        log_stream: str = "{run_id}",
        cloudwatch_format: str = "text",
        aws_access_key_id: SecretStr | str | None = None,
        aws_secret_access_key: SecretStr | str | None = None,
        aws_session_token: SecretStr | str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        cfg = _config(
            api_url=api_url,
            api_key=api_key,
            service_type=service_type,
            buffer_size=buffer_size,
            flush_interval=flush_interval,
            timeout=timeout,
            max_retries=max_retries,
            queue_size=queue_size,
            queue_bytes=queue_bytes,
            overflow=overflow,
            block_timeout=block_timeout,
            format=format,
            signals=list(signals),
            gzip=gzip,
            headers=dict(headers or {}),
            labels=dict(labels or {}),
            service=service,
            verify=verify,
            ca_certs=ca_certs,
            username=username,
            password=password,
            org_id=org_id,
            region=region,
            log_group=log_group,
            log_stream=log_stream,
            cloudwatch_format=cloudwatch_format,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            spool_dir=None if spool_dir is None else os.fspath(spool_dir),
            spool_max_bytes=spool_max_bytes,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
        )
        if cfg.ca_certs is not None and not os.path.isfile(cfg.ca_certs):
            raise ConfigError(f"ca_certs: no such file {cfg.ca_certs!r}")
        extras = extras or {}
        environment = extras.get("environment")
        target, name = make_target(cfg, None if environment is None else str(environment))
        exporter = RestExporter(
            target,
            name,
            timeout=cfg.timeout,
            verify=cfg.verify,
            ca_certs=cfg.ca_certs,
            transport=transport,
        )
        exporter.group = backlog_group(cfg.buffer_size, BACKLOG_RECORDS)
        retry = NetworkRetryPolicy(
            cfg.max_retries,
            cfg.retry_base_delay,
            cfg.retry_max_delay,
            spool_dir=cfg.spool_dir,
            spool_max_bytes=cfg.spool_max_bytes,
        )
        super().__init__(
            exporter,
            run_id=run_id,
            parent_run_id=parent_run_id,
            extras=extras,
            batch_records=cfg.buffer_size,
            flush_interval=cfg.flush_interval,
            queue_size=cfg.queue_size,
            queue_bytes=cfg.queue_bytes,
            overflow=cfg.overflow,
            block_timeout=cfg.block_timeout,
            fail_silently=fail_silently,
            retry=retry,
            level=logging.getLevelName(level) if isinstance(level, str) else level,
        )
        from workflow_traces.exporters.transport import safe_url

        url = str(getattr(target, "url", ""))
        #: The endpoint, without user info or query.
        self.api_url = safe_url(url)
        self.service_type = cfg.service_type
        self.buffer_size = cfg.buffer_size
        self.flush_interval = cfg.flush_interval
        self.timeout = cfg.timeout
        self.max_retries = cfg.max_retries
        self.spool_dir = cfg.spool_dir
        report_insecure_transport(
            name,
            [url],
            verify=cfg.verify,
            verify_key="verify",
            has_secret=bool(cfg.api_key or cfg.password or cfg.headers),
        )

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> RestAPIHandler:
        """The handler for a validated ``RestAPIConfig`` and a ``SinkContext`` (the sink
        registry's builder): every key of the config is a keyword of the handler."""
        return from_sink_config(cls, cfg, ctx)
