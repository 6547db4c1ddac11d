"""One small client interface over the two products the search sink and store talk to:
Elasticsearch (the official ``elasticsearch`` 8 client) and OpenSearch (the official
``opensearch-py`` client). Everything else (the documents, the bulk logic and its per-item
retries, the spool, the read-back) is shared and calls only these methods.

The Elasticsearch 8 client cannot talk to OpenSearch: it sends ``compatible-with=8`` media types
and checks the product header. Hence a thin adapter per product, each importing its client only
when one is made (on the sink's worker, or when a store first reads).

An OpenSearch API error is raised as :class:`ApiFailure`, which carries what the shared code
reads from an Elasticsearch API error (``meta.status``, ``meta.headers``, ``body``), so
``client.classify`` and ``client.status_of`` serve both; OpenSearch transport failures become
RetryableError or PermanentError at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from workflow_traces.pipeline.retry import PermanentError, RetryableError

if TYPE_CHECKING:
    from workflow_traces.exporters.elasticsearch.client import Connection

__all__ = [
    "PRODUCTS",
    "ApiFailure",
    "ElasticsearchAdapter",
    "OpenSearchAdapter",
    "SearchClient",
    "make_client",
]

#: The products, by the name the settings use, and how their name is written.
PRODUCTS = {"elasticsearch": "Elasticsearch", "opensearch": "OpenSearch"}


class SearchClient(Protocol):
    """What the sink and the store ask of a cluster."""

    product: str

    def bulk(self, index: str, body: bytes, filter_path: str) -> dict[str, Any]: ...
    def index_exists(self, index: str) -> bool: ...
    def create_index(self, index: str, mappings: dict[str, Any]) -> None: ...
    def mapping(self, index: str) -> dict[str, Any]: ...
    def template_exists(self, name: str) -> bool: ...
    def put_stream_template(
        self, name: str, mappings: dict[str, Any], priority: int, meta: dict[str, Any]
    ) -> None: ...
    def refresh(self, index: str) -> None: ...
    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def close(self) -> None: ...


class ElasticsearchAdapter:
    """The official Elasticsearch 8 client (JSON through orjson)."""

    product = "Elasticsearch"

    def __init__(self, connection: Connection) -> None:
        self.raw = connection.client()

    def bulk(self, index: str, body: bytes, filter_path: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.raw.bulk(
            operations=body, index=index, filter_path=filter_path
        ).body
        return answer

    def index_exists(self, index: str) -> bool:
        return bool(self.raw.indices.exists(index=index))

    def create_index(self, index: str, mappings: dict[str, Any]) -> None:
        self.raw.indices.create(index=index, mappings=mappings)

    def mapping(self, index: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.raw.indices.get_mapping(index=index).body
        return answer

    def template_exists(self, name: str) -> bool:
        return bool(self.raw.indices.exists_index_template(name=name))

    def put_stream_template(
        self, name: str, mappings: dict[str, Any], priority: int, meta: dict[str, Any]
    ) -> None:
        self.raw.indices.put_index_template(
            name=name,
            index_patterns=[name],
            data_stream={},
            priority=priority,
            template={"mappings": mappings},
            meta=meta,
            create=True,
        )

    def refresh(self, index: str) -> None:
        self.raw.indices.refresh(index=index, ignore_unavailable=True)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.raw.search(index=index, **body).body
        return answer

    def close(self) -> None:
        self.raw.close()


class _Meta:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


class ApiFailure(Exception):
    """An error status from OpenSearch, shaped as the shared code reads API errors."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.meta = _Meta(status, headers or {})
        self.body = body
        self.message = f"HTTP {status}"


class OpenSearchAdapter:
    """The official ``opensearch-py`` client."""

    product = "OpenSearch"

    def __init__(self, connection: Connection) -> None:
        from opensearchpy import OpenSearch

        options: dict[str, Any] = {
            "timeout": connection.timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "retry_on_status": (),
            "http_compress": connection.http_compress,
            "verify_certs": connection.verify_certs,
            "ssl_show_warn": False,
        }
        if connection.ca_certs is not None:
            options["ca_certs"] = connection.ca_certs
        if connection.username is not None:
            password = "" if connection.password is None else connection.password.get_secret_value()
            options["http_auth"] = (connection.username, password)
        self.raw = OpenSearch(list(connection.hosts), **options)
        self._where = connection.describe()

    def _call(self, method: Any, **kwargs: Any) -> Any:
        from opensearchpy.exceptions import (
            ConnectionError,
            ConnectionTimeout,
            SSLError,
            TransportError,
        )

        try:
            return method(**kwargs)
        except SSLError as exc:
            raise PermanentError(
                f"TLS failed with OpenSearch at {self._where}: {_short(exc)} (set ca_certs to "
                "the cluster's CA file, or verify_certs=False to skip the check)"
            ) from None
        except ConnectionTimeout:
            raise RetryableError(f"OpenSearch at {self._where} timed out") from None
        except ConnectionError as exc:
            raise RetryableError(
                f"cannot reach OpenSearch at {self._where}: {_short(exc)}"
            ) from None
        except TransportError as exc:
            status = exc.status_code
            if not isinstance(status, int):
                raise RetryableError(f"OpenSearch at {self._where} failed: {_short(exc)}") from None
            raise ApiFailure(status, exc.info if isinstance(exc.info, dict) else None) from None

    def bulk(self, index: str, body: bytes, filter_path: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            self.raw.bulk, body=body, index=index, filter_path=filter_path
        )
        return answer

    def index_exists(self, index: str) -> bool:
        return bool(self._call(self.raw.indices.exists, index=index))

    def create_index(self, index: str, mappings: dict[str, Any]) -> None:
        self._call(self.raw.indices.create, index=index, body={"mappings": mappings})

    def mapping(self, index: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(self.raw.indices.get_mapping, index=index)
        return answer

    def template_exists(self, name: str) -> bool:
        return bool(self._call(self.raw.indices.exists_index_template, name=name))

    def put_stream_template(
        self, name: str, mappings: dict[str, Any], priority: int, meta: dict[str, Any]
    ) -> None:
        body = {
            "index_patterns": [name],
            "data_stream": {},
            "priority": priority,
            "template": {"mappings": mappings},
            "_meta": meta,
        }
        self._call(self.raw.indices.put_index_template, name=name, body=body, create=True)

    def refresh(self, index: str) -> None:
        self._call(self.raw.indices.refresh, index=index, ignore_unavailable=True)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        if "source" in body:  # the Elasticsearch client's name for _source
            body = {("_source" if k == "source" else k): v for k, v in body.items()}
        answer: dict[str, Any] = self._call(self.raw.search, index=index, body=body)
        return answer

    def close(self) -> None:
        self.raw.close()


def _short(exc: BaseException) -> str:
    from workflow_traces.exporters.elasticsearch.client import short_error

    return short_error(exc)


def make_client(connection: Connection) -> SearchClient:
    """The adapter for ``connection.product``; ImportError when its client is not installed."""
    if connection.product == "opensearch":
        return OpenSearchAdapter(connection)
    return ElasticsearchAdapter(connection)
