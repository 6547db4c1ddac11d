"""The REST surface of :class:`~local_services.elasticsearch.LocalElasticsearch`, as
a mixin: :meth:`handle` answers one request (records it, checks credentials, applies request
faults, gunzips the body, routes it, maps errors to Elasticsearch's error bodies, applies
``filter_path``), ``_route`` dispatches by method and path to the index, template, data-stream
and bulk endpoints, and this module also answers cluster info, cluster health, ``_search`` and
``_count`` (over the documents a refresh made visible, through :mod:`._es_search`).
"""

from __future__ import annotations

import gzip
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from local_services.es_bulk import BulkMixin
from local_services.es_http import HTTPError, LocalRequest, no_handler
from local_services.es_search import Doc, SearchError, filter_path, search_docs

__all__ = ["VERSION", "RoutesMixin"]

VERSION = "8.15.0"


class RoutesMixin(BulkMixin):
    """Request dispatch and the cluster/search endpoints (state set by
    ``LocalElasticsearch.__init__``)."""

    cluster_name: str
    refresh_interval: float | None
    requests: deque[LocalRequest]
    _record: bool
    _auth: set[str]

    def _authorized(self, headers: dict[str, str]) -> bool:
        return not self._auth or headers.get("authorization", "") in self._auth

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one request: (status, JSON body or None, extra headers)."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if self._record:
            self.requests.append(LocalRequest(method, path, query, headers))
        if not self._authorized(headers):
            www = 'Basic realm="security" charset="UTF-8", ApiKey'
            err = HTTPError(
                401,
                "security_exception",
                f"missing authentication credentials for REST request [{path}]"
                if "authorization" not in headers
                else f"unable to authenticate user for REST request [{path}]",
                {"www-authenticate": www},
            )
            return err.status, err.body(), err.headers
        fault = self._request_fault(path)
        if fault is not None:
            return fault.status, fault.body(), fault.headers
        if headers.get("content-encoding", "").lower() == "gzip" and body:
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                err = HTTPError(400, "parse_exception", "request body is not valid gzip")
                return err.status, err.body(), {}
        try:
            status, result = self._route(method, path, query, body)
        except HTTPError as err:
            return err.status, err.body(), err.headers
        except SearchError as err:
            http_err = HTTPError(400, err.kind, err.reason)
            return 400, http_err.body(), {}
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as err:
            http_err = HTTPError(400, "parsing_exception", f"{type(err).__name__}: {err}")
            return 400, http_err.body(), {}
        if method == "HEAD":
            return status, None, {}
        return status, filter_path(result, query.get("filter_path")), {}

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        segs = [s for s in path.split("/") if s]
        if not segs:
            if method in ("GET", "HEAD"):
                return 200, self._info()
            raise no_handler(method, path)
        head = segs[0]
        if head == "_bulk" and len(segs) == 1 and method in ("POST", "PUT"):
            return self._bulk(None, body, query)
        if head == "_search" and len(segs) == 1 and method in ("GET", "POST"):
            return self._search("*", body, query)
        if head == "_count" and len(segs) == 1 and method in ("GET", "POST"):
            return self._count("*", body, query)
        if head == "_refresh" and len(segs) == 1 and method in ("GET", "POST"):
            return self._refresh("*", query)
        if head == "_cluster" and segs[1:2] == ["health"] and method == "GET":
            return 200, self._health()
        if head == "_index_template":
            return self._template(method, segs[1] if len(segs) > 1 else None, body, query)
        if head == "_data_stream":
            return self._data_stream(method, segs[1] if len(segs) > 1 else None)
        if head.startswith("_") and head != "_all":
            raise no_handler(method, path)
        index = head
        if len(segs) == 1:
            if method == "HEAD":
                return (200 if self._resolve(index, query, strict=False) else 404), None
            if method == "PUT":
                return self._create_index(index, body)
            if method == "GET":
                return 200, self._get_index(index, query)
            if method == "DELETE":
                return self._delete_index(index)
            raise no_handler(method, path)
        action = segs[1]
        if action == "_bulk" and method in ("POST", "PUT"):
            return self._bulk(index, body, query)
        if action == "_search" and method in ("GET", "POST"):
            return self._search(index, body, query)
        if action == "_count" and method in ("GET", "POST"):
            return self._count(index, body, query)
        if action == "_refresh" and method in ("GET", "POST"):
            return self._refresh(index, query)
        if action == "_mapping" and method == "GET":
            idx = self._one_index(index)
            return 200, {idx.backing: {"mappings": idx.mappings}}
        if action == "_doc" and len(segs) == 3 and method in ("GET", "HEAD"):
            return self._get_doc(index, segs[2])
        raise no_handler(method, path)

    # -- cluster ---------------------------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        return {
            "name": "local-node",
            "cluster_name": self.cluster_name,
            "cluster_uuid": "local-elasticsearch-cluster-uuid",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "tar",
                "lucene_version": "9.11.1",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def _health(self) -> dict[str, Any]:
        with self._lock:
            count = len(self._indices)
        return {
            "cluster_name": self.cluster_name,
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": count,
            "active_shards": count,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }

    # -- search --------------------------------------------------------------------------------
    def _visible(self, expr: str, query: dict[str, str]) -> list[Doc]:
        now = time.monotonic()
        docs: list[Doc] = []
        with self._lock:
            for idx in self._resolve(expr, query):
                interval = self.refresh_interval
                if interval is None or now - idx.last_refresh >= interval:
                    idx.refresh()
                loads = orjson.loads
                docs.extend(
                    (idx.backing, doc_id, seq, loads(source))
                    for doc_id, (seq, source) in idx.visible.items()
                )
        return docs

    def _search_body(self, body: bytes, query: dict[str, str]) -> dict[str, Any]:
        spec: dict[str, Any] = orjson.loads(body) if body.strip() else {}
        for key in ("size", "from"):
            if key in query:
                spec[key] = int(query[key])
        if "track_total_hits" in query:
            value = query["track_total_hits"]
            spec["track_total_hits"] = value == "true" if value in ("true", "false") else int(value)
        return spec

    def _search(self, expr: str, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
        started = time.perf_counter()
        spec = self._search_body(body, query)
        docs = self._visible(expr, query)
        result = search_docs(docs, spec)
        if query.get("rest_total_hits_as_int") == "true" and "total" in result["hits"]:
            result["hits"]["total"] = result["hits"]["total"]["value"]
        took = int((time.perf_counter() - started) * 1000)
        return 200, {
            "took": took,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            **result,
        }

    def _count(self, expr: str, body: bytes, query: dict[str, str]) -> tuple[int, Any]:
        spec = self._search_body(body, query)
        docs = self._visible(expr, query)
        result = search_docs(
            docs, {"query": spec.get("query"), "size": 0, "track_total_hits": True}
        )
        return 200, {
            "count": result["hits"]["total"]["value"],
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        }
