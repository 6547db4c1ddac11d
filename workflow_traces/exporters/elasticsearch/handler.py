"""The Elasticsearch sink: bulk writes through the official client, on the sink's worker.

Each record is one document whose ``_id`` is its record_id, so a batch sent twice (after a lost
response, a timeout, a retry) keeps one copy: ``index`` overwrites the same document in a plain
index; ``create`` into a data stream answers 409 for a copy already there, counted as written.

Per-item results are read: items that failed with 429 or 5xx go back to the channel for retry,
other 4xx are dropped and reported. A request-level failure is classified by
``_es_client.classify`` (connection errors, timeouts, 408/429/5xx retried; TLS, 401, 403 and
other 4xx not). A 413 splits the request in halves. The document layout is ``_es_schema``.

On first use the exporter creates the index with our mapping (or, with ``data_stream=True``, an
index template with ``data_stream: {}`` that Elasticsearch uses to create the stream on the first
write). Either may already exist; a user without the right to create them gets one warning and
the writes go ahead.

This module does not import ``elasticsearch``: the client is created on the worker at the first
export, so ``import workflow_traces`` stays light.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workflow_traces.core.record import Record
from workflow_traces.diagnostics import report
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.exporters.elasticsearch.adapters import make_client
from workflow_traces.exporters.elasticsearch.client import (
    Connection,
    classify,
    parse_hosts,
    secret,
    status_of,
)
from workflow_traces.exporters.elasticsearch.schema import MAPPINGS, encode_actions
from workflow_traces.exporters.rest.payload import utf8_len
from workflow_traces.exporters.transport import backlog_group, report_insecure_transport
from workflow_traces.pipeline.bounds import NETWORK_QUEUE_BYTES
from workflow_traces.pipeline.channel import DEFAULT_QUEUE_SIZE, Overflow, RetryPolicy
from workflow_traces.pipeline.handler import BufferedHandler, check_positive, from_sink_config
from workflow_traces.pipeline.retry import (
    DEFAULT_SPOOL_MAX_BYTES,
    NetworkRetryPolicy,
    PermanentError,
    RetryableError,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = [
    "BULK_MAX_BYTES",
    "DEFAULT_ES_HOSTS",
    "DEFAULT_INDEX",
    "ElasticsearchExporter",
    "ElasticsearchHandler",
    "check_index_name",
]

DEFAULT_ES_HOSTS = "http://localhost:9200"
DEFAULT_INDEX = "workflow-traces"
#: Largest bulk request body sent at once; a bigger batch goes in several requests.
BULK_MAX_BYTES = 10 * 1024 * 1024
#: When a backlog waits, the worker hands the exporter this many documents at once (``buffer_size``
#: when larger): one bulk request (split at :data:`BULK_MAX_BYTES`) instead of one per
#: ``buffer_size``; each request costs the worker about 0.4 ms of Python in the client.
BACKLOG_DOCUMENTS = 1000
#: Priority of the data stream template: above the built-in ``logs-*-*`` template (100).
TEMPLATE_PRIORITY = 200
# Ask only for what is read back: the per-item status and error.
_FILTER_PATH = "errors,items.*.status,items.*.error"
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


def check_index_name(name: Any, field: str = "index_name") -> str:
    """``name`` if Elasticsearch accepts it as an index or data stream name, else ConfigError."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{field}: expected a non-empty index name, got {name!r}")
    problem = None
    if name != name.lower():
        problem = "must be lowercase"
    elif _BAD_INDEX_CHARS & set(name):
        problem = 'must not contain \\ / * ? " < > | , # : or spaces'
    elif name[0] in "-_+":
        problem = "must not start with -, _ or +"
    elif name in (".", ".."):
        problem = "must not be . or .."
    elif len(name.encode("utf-8")) > 255:
        problem = "must be at most 255 bytes"
    if problem:
        raise ConfigError(f"{field}: {problem}, got {name!r}")
    return name


class _Outcome:
    """What happened to the records of one export."""

    __slots__ = ("reject_error", "rejected", "retry", "retry_error")

    def __init__(self) -> None:
        self.retry: list[Record] = []
        self.rejected = 0
        self.retry_error: Exception | None = None
        self.reject_error: Exception | None = None

    def reject(self, count: int, error: Exception) -> None:
        self.rejected += count
        if self.reject_error is None:
            self.reject_error = error

    def again(self, records: Sequence[Record], error: Exception) -> None:
        self.retry.extend(records)
        if self.retry_error is None:
            self.retry_error = error

    def result(self) -> ExportResult | None:
        if not self.retry and not self.rejected:
            return None
        if not self.retry:
            return ExportResult(rejected=self.rejected, error=self.reject_error)
        error: Exception = self.retry_error or RetryableError("bulk items to retry")
        if self.rejected:
            # One error serves both counts; it must stay retryable so the rest is retried.
            error = RetryableError(
                f"{self.rejected} records rejected ({self.reject_error}); "
                f"{len(self.retry)} to retry ({error})",
                retry_after=getattr(error, "retry_after", None),
            )
        return ExportResult(retry=self.retry, rejected=self.rejected, error=error)


class ElasticsearchExporter(Exporter):
    """Writes batches with the bulk API; owns one client, made on the worker."""

    def __init__(
        self,
        connection: Connection,
        index: str,
        *,
        data_stream: bool = False,
        manage_index: bool = True,
        service_name: str | None = None,
        max_bulk_bytes: int = BULK_MAX_BYTES,
    ) -> None:
        self.connection = connection
        self.index = check_index_name(index)
        self.data_stream = data_stream
        self.manage_index = manage_index
        self.service_name = service_name
        self.max_bulk_bytes = max_bulk_bytes
        self.op = "create" if data_stream else "index"
        self.product = connection.product_name
        self.name = f"{connection.product}:{connection.describe()}/{index}"
        self._where = f"{connection.describe()}/{index}"
        self._client: Any = None
        self._prepared = not manage_index

    # -- the Exporter protocol -----------------------------------------------------------------
    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        client = self._client
        if client is None:
            kind = self.connection.product
            try:
                client = self._client = make_client(self.connection)
            except ImportError as exc:
                raise PermanentError(f"the {kind} sink needs the {kind} extra ({exc})") from None
            except Exception as exc:  # the client refused its options
                raise PermanentError(
                    f"cannot create the {self.product} client for {self._where}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        if not self._prepared:
            self._prepare(client)
        lines = encode_actions(batch, self.op, self.service_name)
        outcome = _Outcome()
        body = "".join(lines).encode()
        if len(body) <= self.max_bulk_bytes:  # the common case: one request
            self._send(client, batch, lines, outcome, body)
            return outcome.result()
        start = 0
        size = 0
        for i, line in enumerate(lines):
            length = utf8_len(line)
            if size and size + length > self.max_bulk_bytes:
                if not self._send(client, batch[start:i], lines[start:i], outcome):
                    outcome.again(batch[i:], outcome.retry_error or RetryableError("stopped"))
                    return outcome.result()
                start, size = i, 0
            size += length
        self._send(client, batch[start:], lines[start:], outcome)
        return outcome.result()

    def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def after_fork(self) -> None:
        self._client = None  # the parent's connection pool must not be used (or closed) here

    # -- one bulk request ----------------------------------------------------------------------
    def _send(
        self,
        client: Any,
        records: Sequence[Record],
        lines: Sequence[str],
        outcome: _Outcome,
        body: bytes | None = None,
    ) -> bool:
        """Send one bulk request (``body``: the lines joined, when already made); record what
        happened in ``outcome``. False when the cluster could not be reached (retryable), so
        later chunks are not tried now."""
        if not records:
            return True
        if body is None:
            body = "".join(lines).encode()
        try:
            answer = client.bulk(self.index, body, _FILTER_PATH)
        except Exception as exc:
            if status_of(exc) == 413 and len(records) > 1:
                half = len(records) // 2
                if not self._send(client, records[:half], lines[:half], outcome):
                    # The cluster went away meanwhile: the second half waits with the first.
                    outcome.again(records[half:], outcome.retry_error or RetryableError("413"))
                    return False
                return self._send(client, records[half:], lines[half:], outcome)
            err = classify(exc, self._where, self.product)
            if isinstance(err, PermanentError):
                outcome.reject(len(records), err)
                return True
            outcome.again(records, err)
            return False
        if not answer.get("errors"):
            return True
        self._read_items(records, answer.get("items") or [], outcome)
        return True

    def _read_items(
        self, records: Sequence[Record], items: list[dict[str, Any]], outcome: _Outcome
    ) -> None:
        retry: list[Record] = []
        rejected = 0
        retry_detail = reject_detail = ""
        for index, rec in enumerate(records):
            if index >= len(items):
                retry.append(rec)  # no answer for this item: it may not have been written
                retry_detail = retry_detail or "no result for the item"
                continue
            info = next(iter(items[index].values()), None) or {}
            status = info.get("status", 0)
            if status < 300 or (status == 409 and self.op == "create"):
                continue  # written, or already there from an earlier attempt
            detail = _item_error(status, info.get("error"))
            if status == 429 or status >= 500:
                retry.append(rec)
                retry_detail = retry_detail or detail
            else:
                rejected += 1
                reject_detail = reject_detail or detail
        if rejected:
            outcome.reject(
                rejected,
                PermanentError(
                    f"{self.product} at {self._where} rejected {rejected} of {len(records)} "
                    f"documents: {reject_detail}"
                ),
            )
        if retry:
            outcome.again(
                retry,
                RetryableError(
                    f"{self.product} at {self._where} could not take {len(retry)} of "
                    f"{len(records)} documents now: {retry_detail}"
                ),
            )

    # -- the index or data stream template, once ---------------------------------------------
    def _prepare(self, client: Any) -> None:
        try:
            if self.data_stream:
                if not client.template_exists(self.index):
                    client.put_stream_template(
                        self.index, MAPPINGS, TEMPLATE_PRIORITY, {"created_by": "workflow-traces"}
                    )
            elif not client.index_exists(self.index):
                client.create_index(self.index, MAPPINGS)
            else:
                self._check_layout(client)
        except PermanentError:
            raise
        except Exception as exc:
            status = status_of(exc)
            kind, reason = _body_error(exc)
            if status == 400 and (
                kind == "resource_already_exists_exception"
                or (kind == "illegal_argument_exception" and "already exists" in reason)
            ):
                pass  # made meanwhile by another process: fine
            elif status in (400, 403, 404):
                report(
                    f"es-prepare:{self.name}",
                    f"workflow-traces: sink {self.name} could not create "
                    f"{'the data stream template' if self.data_stream else 'the index'} "
                    f"({status} {kind}); writing anyway",
                )
            else:
                raise classify(exc, self._where, self.product) from None
        self._prepared = True

    def _check_layout(self, client: Any) -> None:
        """Refuse an index made by an earlier version for the documents before the ECS event
        layout: its mapping has ``event`` as text, so every lifecycle event (``event`` is an
        object now) would be refused one by one."""
        try:
            body = client.mapping(self.index)
        except Exception:
            return  # not allowed to look: write, and let the cluster answer per document
        for index in body.values() if isinstance(body, dict) else ():
            event = (index.get("mappings", {}).get("properties") or {}).get("event") or {}
            if event.get("type") not in (None, "object"):
                raise PermanentError(
                    f"index {self.index!r} at {self._where} was made by an earlier "
                    f"workflow-traces: its 'event' is mapped as {event.get('type')}, and "
                    "documents now keep lifecycle events under the ECS event object; write to a "
                    "new index_name (the store reads both)"
                )


def _body_error(exc: BaseException) -> tuple[str, str]:
    """The error type and reason of an API error's body."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("type", "")), str(error.get("reason", ""))
    return "", ""


def _item_error(status: int, error: Any) -> str:
    if isinstance(error, dict):
        reason = str(error.get("reason", ""))[:300]
        return f"{status} {error.get('type', 'error')}: {reason}"
    return f"{status} {error or ''}".strip()


class ElasticsearchHandler(BufferedHandler):
    """Sends records to Elasticsearch with the bulk API, from the sink's worker thread.

    ``buffer_size`` is in records: the worker sends once that many are queued, and at least
    every ``flush_interval`` seconds. ``index_name`` is a plain index (created with our mapping
    on first use) or, with ``data_stream=True``, a data stream. Authenticate with ``username``
    and ``password``, or with ``api_key`` (the encoded key, or ``"id:key"``). HTTPS certificates
    are verified (``ca_certs`` names the CA file) unless ``verify_certs=False``.

    Failed sends are retried ``max_retries`` times with jittered backoff from
    ``retry_base_delay`` up to ``retry_max_delay`` (the client's own retries are off); then the
    sink's circuit breaker holds the records and probes the cluster now and then. With
    ``spool_dir`` the held records go to disk and are sent, oldest first, when the cluster is
    back, also by the next process. When the buffer is full, records are dropped and counted
    (``overflow="drop"``): the caller never waits on the cluster.
    """

    #: The product the hosts run (OpenSearchHandler: "opensearch"); see adapters.py.
    product = "elasticsearch"

    def __init__(
        self,
        run_id: str,
        parent_run_id: str | None = None,
        es_hosts: str | list[str] = DEFAULT_ES_HOSTS,
        index_name: str = DEFAULT_INDEX,
        username: str | None = None,
        password: str | SecretStr | None = None,
        extras: dict[str, Any] | None = None,
        *,
        buffer_size: int = 100,
        flush_interval: float = 2.0,
        timeout: float = 30.0,
        max_retries: int = 3,
        api_key: str | SecretStr | None = None,
        ca_certs: str | None = None,
        verify_certs: bool = True,
        data_stream: bool = False,
        http_compress: bool = False,
        service_name: str | None = None,
        manage_index: bool = True,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        queue_bytes: int = NETWORK_QUEUE_BYTES,
        overflow: Overflow = "drop",
        block_timeout: float = 1.0,
        fail_silently: bool = True,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        retry: RetryPolicy | None = None,
        level: int | str = logging.NOTSET,
    ) -> None:
        check_positive("buffer_size", buffer_size)
        check_positive("timeout", timeout)
        check_positive("max_retries", max_retries, allow_zero=True)
        check_positive("spool_max_bytes", spool_max_bytes)
        check_positive("retry_base_delay", retry_base_delay)
        check_positive("retry_max_delay", retry_max_delay)
        hosts, url_user, url_password = parse_hosts(es_hosts)
        if url_user is not None and username is None and api_key is None:
            username, password = url_user, url_password
        connection = Connection(
            hosts=tuple(hosts),
            username=username,
            password=secret(password, "password"),
            api_key=secret(api_key, "api_key"),
            ca_certs=None if ca_certs is None else str(ca_certs),
            verify_certs=bool(verify_certs),
            timeout=float(timeout),
            http_compress=bool(http_compress),
            product=self.product,
        )
        exporter = ElasticsearchExporter(
            connection,
            index_name,
            data_stream=data_stream,
            manage_index=manage_index,
            service_name=service_name,
        )
        exporter.group = backlog_group(buffer_size, BACKLOG_DOCUMENTS)
        super().__init__(
            exporter,
            run_id=run_id,
            parent_run_id=parent_run_id,
            extras=extras,
            batch_records=buffer_size,
            batch_bytes=BULK_MAX_BYTES,
            flush_interval=flush_interval,
            queue_size=queue_size,
            queue_bytes=queue_bytes,
            overflow=overflow,
            block_timeout=block_timeout,
            fail_silently=fail_silently,
            retry=retry
            or NetworkRetryPolicy(
                max_retries,
                retry_base_delay,
                retry_max_delay,
                spool_dir=None if spool_dir is None else os.fspath(spool_dir),
                spool_max_bytes=spool_max_bytes,
            ),
            level=logging.getLevelName(level) if isinstance(level, str) else level,
        )
        self.es_hosts = list(hosts)
        self.index_name = index_name
        self.username = connection.username
        self.password = connection.password
        self.api_key = connection.api_key
        self.ca_certs = connection.ca_certs
        self.verify_certs = connection.verify_certs
        self.data_stream = data_stream
        self.buffer_size = buffer_size
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.max_retries = max_retries
        self.spool_dir = None if spool_dir is None else os.fspath(spool_dir)
        self.exporter = exporter
        report_insecure_transport(
            self.name,
            connection.hosts,
            verify=connection.verify_certs,
            verify_key="verify_certs",
            has_secret=connection.password is not None or connection.api_key is not None,
        )

    @classmethod
    def from_config(cls, cfg: Any, ctx: Any) -> ElasticsearchHandler:
        """The handler for a validated ``ElasticsearchConfig`` and a ``SinkContext`` (the sink
        registry's builder): every key of the config is a keyword of the handler."""
        return from_sink_config(cls, cfg, ctx)
