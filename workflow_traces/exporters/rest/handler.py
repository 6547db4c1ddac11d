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

import logging
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workflow_traces.core.record import Record
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.exporters.rest.partial import PartialDeliveries
from workflow_traces.exporters.rest.targets import Target, make_target
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

    from workflow_traces.settings.config import RestAPIConfig

__all__ = ["RestAPIHandler", "RestExporter"]

USER_AGENT = "workflow-traces/0.1.0"

#: When a backlog waits, the worker hands the exporter this many records at once (``buffer_size``
#: when larger), and the encoder packs them into as few requests as the service's limits allow:
#: Datadog takes at most 1,000 entries a request, CloudWatch 10,000 events; Loki, OTLP and the
#: generic formats are bounded by bytes. Each request costs the worker about 0.4 ms of Python
#: (httpx), 8 us a record at 50 records a request.
BACKLOG_RECORDS = 1000


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
