"""Helpers for the Elasticsearch and OpenSearch tests: one ``Cluster`` interface over the
LocalElasticsearch server (always), osmem-server (a third-party OpenSearch-API server from PyPI,
always), and real clusters (when TRACE_TEST_ES_URL / TRACE_TEST_OPENSEARCH_URL is set), so the
core tests run unchanged against each.

Real cluster settings, all read here only:

- ``TRACE_TEST_ES_URL``: ``http(s)://[user:password@]host:port`` of Elasticsearch, and
  ``TRACE_TEST_OPENSEARCH_URL`` of OpenSearch (each required to run its suite);
- ``TRACE_TEST_ES_API_KEY``: an API key instead of user/password in the URL (Elasticsearch);
- ``TRACE_TEST_ES_CA_CERTS``: the cluster's CA file; ``TRACE_TEST_ES_VERIFY_CERTS=false`` to
  skip certificate checks (self-signed test clusters). Both apply to either product.

Every index, data stream and template a test makes is named ``wt-test-<random>`` and deleted
afterwards.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from local_services import LocalElasticsearch

from workflow_traces import BufferedHandler, MultiHandler, Trace
from workflow_traces.core.record import Record
from workflow_traces.exporters.elasticsearch.adapters import make_client
from workflow_traces.exporters.elasticsearch.client import (
    Connection,
    parse_hosts,
    secret,
    status_of,
)
from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
from workflow_traces.exporters.elasticsearch.opensearch import OpenSearchHandler
from workflow_traces.pipeline.retry import NetworkRetryPolicy
from workflow_traces.store.elasticsearch import OPENSEARCH_PREFIX

REAL_URL = os.environ.get("TRACE_TEST_ES_URL")
REAL_OPENSEARCH_URL = os.environ.get("TRACE_TEST_OPENSEARCH_URL")


def fast_retry(max_retries: int = 6) -> NetworkRetryPolicy:
    """The network policy with short waits, so fault tests take milliseconds, not seconds."""
    return NetworkRetryPolicy(max_retries=max_retries, base_delay=0.01, max_delay=0.05)


class Cluster:
    """Where the tests write: ``url`` plus the handler keyword arguments to reach it.
    ``product`` is "elasticsearch" or "opensearch"; ``local`` is the LocalElasticsearch when the
    test runs against it (tests that look inside it check for it)."""

    def __init__(
        self,
        local: LocalElasticsearch | None,
        *,
        product: str = "elasticsearch",
        url: str | None = None,
    ) -> None:
        self.local = local
        self.product = product
        self.made: list[tuple[str, str]] = []
        self.auth: dict[str, Any] = {}
        if local is not None:
            self.url = local.url
        elif url is not None:  # osmem-server: a clone of its base cluster
            self.url = url
        else:
            real = REAL_OPENSEARCH_URL if product == "opensearch" else REAL_URL
            assert real
            self.url = real
            if os.environ.get("TRACE_TEST_ES_API_KEY") and product == "elasticsearch":
                self.auth["api_key"] = os.environ["TRACE_TEST_ES_API_KEY"]
            if os.environ.get("TRACE_TEST_ES_CA_CERTS"):
                self.auth["ca_certs"] = os.environ["TRACE_TEST_ES_CA_CERTS"]
            if os.environ.get("TRACE_TEST_ES_VERIFY_CERTS", "").lower() in ("0", "false", "no"):
                self.auth["verify_certs"] = False
        self._real = local is None and url is None
        self._api: Any = None

    @property
    def is_real(self) -> bool:
        return self._real

    @property
    def is_opensearch(self) -> bool:
        return self.product == "opensearch"

    def new_index(self, kind: str = "index") -> str:
        name = f"wt-test-{uuid.uuid4().hex[:12]}"
        self.made.append((kind, name))
        return name

    def handler(self, run_id: str, index: str, **kwargs: Any) -> ElasticsearchHandler:
        options: dict[str, Any] = {
            "flush_interval": 0.05,
            "fail_silently": False,
            **self.auth,
            **kwargs,
        }
        kind = OpenSearchHandler if self.is_opensearch else ElasticsearchHandler
        return kind(run_id, es_hosts=self.url, index_name=index, **options)

    def store_url(self, index: str) -> str:
        prefix = OPENSEARCH_PREFIX if self.is_opensearch else ""
        return f"{prefix}{self.url.rstrip('/')}/{index}"

    def store_kwargs(self) -> dict[str, Any]:
        return dict(self.auth)

    def api(self) -> Any:
        """The product's official client behind our adapter (adapters.SearchClient), for
        looking at the cluster; ``api().raw`` is the official client itself."""
        if self._api is None:
            hosts, user, password = parse_hosts(self.url)
            conn = Connection(
                hosts=tuple(hosts),
                username=user,
                password=secret(password, "password"),
                api_key=secret(self.auth.get("api_key"), "api_key"),
                ca_certs=self.auth.get("ca_certs"),
                verify_certs=self.auth.get("verify_certs", True),
                product=self.product,
            )
            self._api = make_client(conn)
        return self._api

    def client(self) -> Any:
        """The official client of the cluster's product."""
        return self.api().raw

    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        """Every document of ``index`` by _id (refreshes first on a real cluster)."""
        if self.local is not None:
            return self.local.documents(index)
        api = self.api()
        try:
            api.refresh(index)
            # One page: the tests write far fewer than index.max_result_window (10,000).
            result = api.search(index, {"size": 10_000, "track_total_hits": True})
        except Exception as exc:
            if status_of(exc) == 404:
                return {}
            raise
        assert result["hits"]["total"]["value"] < 10_000
        return {hit["_id"]: hit["_source"] for hit in result["hits"]["hits"]}

    def refresh(self, index: str) -> None:
        if self.local is not None:
            self.local.refresh(index)
        else:
            self.api().refresh(index)

    def cleanup(self) -> None:
        if not self._real:
            return
        client = self.client()
        for kind, name in self.made:
            for call in (
                lambda n=name: client.indices.delete_data_stream(name=n),
                lambda n=name: client.indices.delete(index=n, ignore_unavailable=True),
                lambda n=name: client.indices.delete_index_template(name=n),
            ):
                try:
                    call()
                except Exception as exc:
                    logging.getLogger("tests").debug("cleanup of %s %s: %s", kind, name, exc)
        client.close()


class _ListExporter:
    name = "memory"

    def __init__(self) -> None:
        self.records: list[Record] = []

    def export(self, batch: Any) -> None:
        self.records.extend(batch)

    def close(self) -> None:
        return None

    def after_fork(self) -> None:
        return None


class Memory(BufferedHandler):
    """A sink that keeps what it is given: the records the test sent, by record_id."""

    def __init__(self, run_id: str = "memory") -> None:
        self.exporter = _ListExporter()
        super().__init__(self.exporter, run_id=run_id, flush_interval=0.05)

    @property
    def records(self) -> list[Record]:
        return self.exporter.records


def trace_with(
    run_id: str, handlers: list[logging.Handler], parent: str | None = None, **extras: Any
) -> Trace:
    """A Trace writing to ``handlers`` (no configuration involved)."""
    multi = MultiHandler(run_id, parent, handlers=handlers, extras=extras)
    return Trace(run_id, parent, extras=extras, handler=multi)


def logger_for(handler: logging.Handler, name: str = "es-test") -> logging.Logger:
    """A private logger that sends only to ``handler``."""
    logger = logging.getLogger(f"{name}.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def ids_of(records: Iterable[Any]) -> Counter[str]:
    """record_id -> how many times it appears."""
    return Counter(r.record_id if hasattr(r, "record_id") else r["record_id"] for r in records)


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
