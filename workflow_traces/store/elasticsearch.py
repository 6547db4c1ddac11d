"""Reading runs back from Elasticsearch or OpenSearch: ``open_store("http://host:9200/index")``
for Elasticsearch, ``open_store("opensearch+https://host:9200/index")`` for OpenSearch.

The URL is ``[opensearch+]http(s)://[user:password@]host[:port][/path-prefix]/index``: its last
path segment names the index or data stream (``workflow-traces`` when the path is empty);
anything before it is a path prefix for a cluster behind a proxy. The ``opensearch+`` prefix
picks the OpenSearch client (``opensearch-py``, the ``opensearch`` extra); both products read the
same documents through the same code. Credentials, when not in the URL, come from the
environment: ``TRACE_ES_USERNAME`` and ``TRACE_ES_PASSWORD``, or ``TRACE_ES_API_KEY``
(Elasticsearch only); the CA file from ``TRACE_ES_CA_CERTS``, and ``TRACE_ES_VERIFY_CERTS=false``
turns certificate checks off. Credentials never appear in ``str(store)`` or in errors.

The store answers ``list_runs`` and ``get_run`` exactly as the SQLite store does for the same
records: summaries come from one composite aggregation over ``run_id`` (first and last record by
``time_ns``, the greatest ``parent_run_id`` and ``workflow_name``, the count) plus the workflow
lifecycle events; a run's records are paged with ``search_after`` sorted by ``time_ns``, with
ties in the order the records were made. Documents become searchable at the cluster's next
refresh; the store asks for one when it opens (``refresh=False`` to skip; lacking the right to
refresh is not an error). Documents of the layout before ECS events read back too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from workflow_traces.core.record import Record
from workflow_traces.errors import ConfigError, TraceError
from workflow_traces.exporters.elasticsearch.adapters import make_client
from workflow_traces.exporters.elasticsearch.client import (
    Connection,
    classify,
    parse_hosts,
    secret,
    status_of,
)
from workflow_traces.exporters.elasticsearch.documents import event_of, record_from_doc, seq_key
from workflow_traces.store.base import RunSummary, Store, summarize
from workflow_traces.store.query import Filters

__all__ = ["ENV_API_KEY", "ENV_PASSWORD", "ENV_USERNAME", "OPENSEARCH_PREFIX", "ElasticsearchStore"]

ENV_USERNAME = "TRACE_ES_USERNAME"
ENV_PASSWORD = "TRACE_ES_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_API_KEY = "TRACE_ES_API_KEY"
ENV_CA_CERTS = "TRACE_ES_CA_CERTS"
ENV_VERIFY_CERTS = "TRACE_ES_VERIFY_CERTS"

DEFAULT_INDEX = "workflow-traces"
#: Documents per search page, and runs per aggregation page.
PAGE_SIZE = 1000
RUN_PAGE_SIZE = 500
_SORT = [{"time_ns": {"order": "asc"}}, {"record_id": {"order": "asc"}}]
_EVENT_FIELDS = ["run_id", "scope", "event", "time_ns", "duration", "record_id", "job_name"]
#: Seconds of records ``follow`` reads again at each look, for documents that land late.
FOLLOW_LAG = 15.0
_FALSE = ("0", "false", "no", "off")
#: The URL prefix that picks OpenSearch.
OPENSEARCH_PREFIX = "opensearch+"


def _summary_aggs(after: dict[str, Any] | None) -> dict[str, Any]:
    composite: dict[str, Any] = {
        "size": RUN_PAGE_SIZE,
        "sources": [{"run_id": {"terms": {"field": "run_id"}}}],
    }
    if after is not None:
        composite["after"] = after

    def edge(order: str) -> dict[str, Any]:
        return {
            "top_hits": {
                "size": 1,
                "sort": [{"time_ns": {"order": order}}],
                "_source": ["time_ns"],
            }
        }

    def greatest(field: str) -> dict[str, Any]:
        return {"terms": {"field": field, "size": 1, "order": {"_key": "desc"}}}

    return {
        "runs": {
            "composite": composite,
            "aggs": {
                "first": edge("asc"),
                "last": edge("desc"),
                "parent": greatest("parent_run_id"),
                "workflow": greatest("workflow_name"),
            },
        }
    }


def _order(rec: Record) -> tuple[int, tuple[str, int]]:
    return rec.time_ns, seq_key(rec.record_id)


def _top_time(bucket: dict[str, Any], name: str) -> int:
    return int(bucket[name]["hits"]["hits"][0]["_source"]["time_ns"])


def _greatest(bucket: dict[str, Any], name: str) -> str | None:
    buckets = bucket[name]["buckets"]
    return str(buckets[0]["key"]) if buckets else None


class ElasticsearchStore(Store):
    """Reads the Elasticsearch (or OpenSearch) sink's index or data stream."""

    def __init__(
        self, connection: Connection, index: str = DEFAULT_INDEX, *, refresh: bool = True
    ) -> None:
        from workflow_traces.exporters.elasticsearch.handler import check_index_name

        self.connection = connection
        self.index = check_index_name(index, "location")
        self.refresh = refresh
        self._client: Any = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: Any = None,
        api_key: Any = None,
        ca_certs: str | None = None,
        verify_certs: bool | None = None,
        timeout: float = 30.0,
        refresh: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> ElasticsearchStore:
        """A store for ``[opensearch+]http(s)://[user:password@]host[:port][/prefix]/index``.
        Arguments win over the URL, and the URL over the TRACE_ES_* environment variables."""
        env = os.environ if env is None else env
        product = "elasticsearch"
        if url.startswith(OPENSEARCH_PREFIX):
            product, url = "opensearch", url[len(OPENSEARCH_PREFIX) :]
        parts = urlsplit(url)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        index = segments[-1] if segments else DEFAULT_INDEX
        prefix = "/".join(segments[:-1])
        base = f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
        hosts, url_user, url_password = parse_hosts(base)
        if username is None and api_key is None:
            username, password = url_user, url_password
        if username is None and api_key is None:
            username = env.get(ENV_USERNAME) or None
            password = env.get(ENV_PASSWORD) or None
            api_key = env.get(ENV_API_KEY) or None
        if ca_certs is None:
            ca_certs = env.get(ENV_CA_CERTS) or None
        if verify_certs is None:
            verify_certs = env.get(ENV_VERIFY_CERTS, "true").strip().lower() not in _FALSE
        connection = Connection(
            hosts=tuple(hosts),
            username=username,
            password=secret(password, "password"),
            api_key=secret(api_key, "api_key"),
            ca_certs=ca_certs,
            verify_certs=verify_certs,
            timeout=timeout,
            product=product,
        )
        return cls(connection, index, refresh=refresh)

    def __str__(self) -> str:
        return f"{self.connection.product}:{self.connection.describe()}/{self.index}"

    def __repr__(self) -> str:
        return f"<ElasticsearchStore {self}>"

    # -- talking to the cluster ----------------------------------------------------------------
    def _get_client(self) -> Any:
        if self._client is None:
            try:
                self._client = make_client(self.connection)
            except ImportError as exc:
                kind = self.connection.product
                raise ConfigError(
                    f"location: reading {self} needs the {kind} extra ({exc})"
                ) from None
            if self.refresh:
                try:
                    self._client.refresh(self.index)
                except Exception as exc:
                    if status_of(exc) is None:
                        raise self._error(exc) from None
                    # 403 (no right to refresh) or 404: read what is searchable already.
        return self._client

    def _error(self, exc: BaseException) -> TraceError:
        where = f"{self.connection.describe()}/{self.index}"
        err = classify(exc, where, self.connection.product_name)
        hint = ""
        if status_of(exc) == 401:
            hint = f" (credentials: {ENV_USERNAME} and {ENV_PASSWORD}, or {ENV_API_KEY})"
        return TraceError(f"cannot read runs: {err}{hint}")

    def _search(self, **body: Any) -> dict[str, Any] | None:
        """One search; None when the index does not exist (yet)."""
        client = self._get_client()
        try:
            result: dict[str, Any] = client.search(self.index, body)
        except Exception as exc:
            if status_of(exc) == 404:
                return None
            raise self._error(exc) from None
        return result

    def _scan(self, query: dict[str, Any], source: Any = True) -> Iterator[dict[str, Any]]:
        """Every matching document's ``_source``, sorted by time_ns then record_id."""
        after: list[Any] | None = None
        while True:
            extra: dict[str, Any] = {} if after is None else {"search_after": after}
            result = self._search(
                query=query,
                sort=_SORT,
                size=PAGE_SIZE,
                source=source,
                track_total_hits=False,
                **extra,
            )
            hits = [] if result is None else result["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < PAGE_SIZE:
                return
            after = hits[-1]["sort"]

    def _runs(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Composite buckets, one per run_id, over the documents ``query`` matches."""
        after: dict[str, Any] | None = None
        while True:
            result = self._search(
                query=query, size=0, aggs=_summary_aggs(after), track_total_hits=False
            )
            if result is None:
                return
            runs = result["aggregations"]["runs"]
            buckets = runs["buckets"]
            yield from buckets
            after = runs.get("after_key")
            if len(buckets) < RUN_PAGE_SIZE or after is None:
                return

    # -- the Store interface -------------------------------------------------------------------
    def _query(self, run_id: str, filters: Filters) -> dict[str, Any]:
        """The bool query for a run's records that pass ``filters`` (all but ``text``, which
        is tested on each record: a substring test that no analyzer changes)."""
        must: list[dict[str, Any]] = [{"term": {"run_id": run_id}}]
        if filters.levelno is not None:
            must.append({"range": {"levelno": {"gte": filters.levelno}}})
        if filters.job is not None:
            must.append({"term": {"job_name": filters.job}})
        if filters.stage is not None:
            must.append({"term": {"stage_name": filters.stage}})
        if filters.since_ns is not None:
            must.append({"range": {"time_ns": {"gte": filters.since_ns}}})
        if filters.kind is not None:
            must.append({"term": {"kind": filters.kind}})
        return {"bool": {"filter": must}}

    def _pages(self, query: dict[str, Any]) -> Iterator[list[Record]]:
        """The matching records page by page, in (time_ns, creation) order: the records that
        share the page's last time_ns wait for the next page, so ties come out in order."""
        after: list[Any] | None = None
        held: list[Record] = []
        while True:
            extra: dict[str, Any] = {} if after is None else {"search_after": after}
            result = self._search(
                query=query, sort=_SORT, size=PAGE_SIZE, track_total_hits=False, **extra
            )
            hits = [] if result is None else result["hits"]["hits"]
            records = held + [record_from_doc(hit["_source"]) for hit in hits]
            records.sort(key=_order)
            if len(hits) < PAGE_SIZE:
                yield records
                return
            tail = records[-1].time_ns
            cut = len(records)
            while cut > 0 and records[cut - 1].time_ns == tail:
                cut -= 1
            held = records[cut:]
            yield records[:cut]
            after = hits[-1]["sort"]

    def _iter(
        self, run_id: str, filters: Filters, after: str | None, limit: int | None
    ) -> Iterator[Record]:
        since = filters.since_ns
        start: tuple[int, tuple[str, int]] | None = None
        if after is not None:
            result = self._search(
                query={
                    "bool": {
                        "filter": [{"term": {"record_id": after}}, {"term": {"run_id": run_id}}]
                    }
                },
                size=1,
                source=["time_ns"],
            )
            hits = [] if result is None else result["hits"]["hits"]
            if not hits:
                return
            at = int(hits[0]["_source"]["time_ns"])
            start = (at, seq_key(after))
            since = at if since is None else max(since, at)
        query = self._query(run_id, Filters(**{**filters.__dict__, "since_ns": since}))
        text = filters.text
        given = 0
        for page in self._pages(query):
            for rec in page:
                if start is not None and _order(rec) <= start:
                    continue
                if text is not None and not Filters(text=text).matches(rec):
                    continue
                yield rec
                given += 1
                if limit is not None and given >= limit:
                    return

    def _poller(self, run_id: str) -> Callable[[], list[Record]]:
        """New records by time: each look reads the last FOLLOW_LAG seconds again (documents
        become searchable out of order, a batch that waited in a sink's buffer later than a
        newer one) and keeps those whose ids it has not given yet."""
        seen: dict[str, int] = {}
        top = 0

        def poll() -> list[Record]:
            nonlocal top
            client = self._get_client()
            # Without the right to refresh, read what is searchable already.
            with contextlib.suppress(Exception):
                client.refresh(self.index)
            since = max(0, top - int(FOLLOW_LAG * 1e9))
            query = self._query(run_id, Filters(since_ns=since if top else None))
            out = [rec for page in self._pages(query) for rec in page if rec.record_id not in seen]
            for rec in out:
                seen[rec.record_id] = rec.time_ns
                top = max(top, rec.time_ns)
            floor = top - int(FOLLOW_LAG * 1e9)
            for rid in [rid for rid, t in seen.items() if t < floor]:
                del seen[rid]
            return out

        return poll

    def _workflow_events(
        self, run_ids: list[str] | None
    ) -> tuple[
        dict[str, list[tuple[str, int, float | None]]],
        dict[str, list[tuple[str, int, float | None, str | None]]],
    ]:
        filters: list[dict[str, Any]] = [
            {"term": {"kind": "event"}},
            {"terms": {"scope": ["workflow", "job"]}},
        ]
        if run_ids is not None:
            filters.append({"terms": {"run_id": run_ids}})
        docs = list(self._scan({"bool": {"filter": filters}}, _EVENT_FIELDS))
        docs.sort(key=lambda d: (int(d["time_ns"]), seq_key(d["record_id"])))
        wf: dict[str, list[tuple[str, int, float | None]]] = {}
        jobs: dict[str, list[tuple[str, int, float | None, str | None]]] = {}
        for doc in docs:
            event, duration = event_of(doc)  # ECS event.*, or the earlier top-level fields
            if event is None:
                continue
            if doc.get("scope") == "workflow":
                wf.setdefault(doc["run_id"], []).append((event, int(doc["time_ns"]), duration))
            else:
                jobs.setdefault(doc["run_id"], []).append(
                    (event, int(doc["time_ns"]), duration, doc.get("job_name"))
                )
        return wf, jobs

    def _summary_rows(self, run_ids: list[str] | None) -> list[RunSummary]:
        query: dict[str, Any] = (
            {"match_all": {}} if run_ids is None else {"terms": {"run_id": run_ids}}
        )
        buckets = list(self._runs(query))
        if not buckets:
            return []
        wf, jobs = self._workflow_events(run_ids)
        out = []
        for bucket in buckets:
            run_id = str(bucket["key"]["run_id"])
            out.append(
                summarize(
                    run_id,
                    _greatest(bucket, "parent"),
                    _greatest(bucket, "workflow"),
                    _top_time(bucket, "first"),
                    _top_time(bucket, "last"),
                    int(bucket["doc_count"]),
                    wf.get(run_id, []),
                    jobs.get(run_id, []),
                )
            )
        return out

    def _summaries(self) -> list[RunSummary]:
        return self._summary_rows(None)

    def _summary(self, run_id: str) -> RunSummary | None:
        rows = self._summary_rows([run_id])
        return rows[0] if rows else None

    def _children(self, run_id: str) -> list[RunSummary]:
        ids = [str(b["key"]["run_id"]) for b in self._runs({"term": {"parent_run_id": run_id}})]
        out: list[RunSummary] = []
        for start in range(0, len(ids), PAGE_SIZE):
            out.extend(self._summary_rows(ids[start : start + PAGE_SIZE]))
        return out

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
