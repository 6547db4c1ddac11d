"""``LocalElasticsearch``: a small Elasticsearch on 127.0.0.1 for tests, examples and benchmarks.

It speaks the REST endpoints the workflow-traces sink and store use, closely enough that the
official ``elasticsearch`` 8.x client runs against it unchanged::

    with LocalElasticsearch() as es:
        handler = ElasticsearchHandler("run-1", es_hosts=es.url)
        ...
        handler.flush()
        assert len(es.documents("workflow-traces")) == 3

Endpoints: ``GET|HEAD /`` (cluster info), ``GET /_cluster/health``; ``HEAD|GET|PUT|DELETE
/{index}`` (create with mappings; ``resource_already_exists_exception`` when it exists),
``GET /{index}/_mapping``, ``GET /{index}/_doc/{id}``; ``HEAD|GET|PUT|DELETE
/_index_template/{name}`` and ``GET|PUT|DELETE /_data_stream/{name}`` (a data stream is made on
the first ``create`` into a name that a data-stream template matches); ``POST|PUT /_bulk`` and
``/{index}/_bulk`` (NDJSON, gzip, ``index``/``create``/``update``/``delete``, per-item statuses
and the ``errors`` flag, ``refresh``); ``GET|POST /{index}/_search`` (see ``_es_search`` for the
queries, sorts and aggregations) and ``/{index}/_count``; ``POST /{index}/_refresh``. Every
response carries ``X-Elastic-Product: Elasticsearch``; ``filter_path`` is honoured; gzip is sent
back when the client accepts it.

Like Elasticsearch, documents become searchable at a refresh: an explicit ``_refresh``, a bulk
with ``refresh=true|wait_for``, or once ``refresh_interval`` seconds have passed (1 s, as in
Elasticsearch; None means at once). :meth:`LocalElasticsearch.documents` sees everything.

Mapped fields are type-checked (long, integer, double, boolean, date, keyword, object...), so a
document that does not fit answers 400 ``document_parsing_exception`` as Elasticsearch would.

Knobs to make it misbehave: :meth:`fail_items` (the next N bulk items answer 429, 400, 503...),
:meth:`fail_requests` (whole requests answer a status, with ``Retry-After``),
:meth:`lose_responses` (apply the bulk, then drop the connection without answering),
:meth:`down` / :meth:`up` (refuse connections, then listen again on the same port) and
:attr:`delay` (seconds before each answer). ``username``/``password`` or ``api_key`` make it
demand credentials (401 otherwise); ``tls=True`` serves HTTPS with a fresh CA in :attr:`ca_certs`
(needs the ``cryptography`` package).

Run it on its own with
``python -c "from local_services.elasticsearch import main; main()" --port 9200``.

This module holds the server's state, lifecycle and inspection methods; the rest lives in
private modules: ``_es_http`` (server and request handler), ``_es_routes`` (dispatch, cluster,
search and count), ``_es_bulk``, ``_es_indices`` (indices, templates, data streams),
``_es_mapping`` (document checks), ``_es_faults`` (fault knobs), ``_es_tls`` and ``_es_search``.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import ssl
import threading
from collections import deque
from typing import Any

import orjson

from local_services.es_http import Handler, LocalRequest, Server
from local_services.es_indices import Index, Template
from local_services.es_routes import (
    VERSION,  # noqa: F401  (still importable from here)
    RoutesMixin,
)
from local_services.es_tls import make_server_tls
from local_services.serve import serve_until_interrupted

__all__ = ["LocalElasticsearch", "LocalRequest", "main"]


class LocalElasticsearch(RoutesMixin):
    """A threaded Elasticsearch stand-in on 127.0.0.1 (``port=0`` picks a free port)."""

    def __init__(
        self,
        *,
        port: int = 0,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        tls: bool = False,
        refresh_interval: float | None = 1.0,
        record_requests: int = 10_000,
        cluster_name: str = "local-elasticsearch",
        check_documents: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        #: Parse each indexed document and check it against the mapping, as Elasticsearch
        #: does. False keeps documents as received (JSON objects, not looked into until a
        #: search): a lighter server for benchmarks of the client side.
        self.check_documents = check_documents
        self._indices: dict[str, Index] = {}
        self._templates: dict[str, Template] = {}
        self._seq = 0
        self._item_faults: deque[list[Any]] = deque()
        self._request_faults: deque[list[Any]] = deque()
        self._lose = 0
        self._connections: set[socket.socket] = set()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp: str | None = None
        self._ssl: ssl.SSLContext | None = None
        self._port = port
        self.cluster_name = cluster_name
        self.refresh_interval = refresh_interval
        self.requests: deque[LocalRequest] = deque(maxlen=max(1, record_requests))
        self._record = record_requests > 0
        #: Items refused, in order: (status, _id). Injected faults and real ones alike.
        self.rejected: list[tuple[int, str]] = []
        #: Bulk requests and operations received (including those answered with errors).
        self.bulk_requests = 0
        self.bulk_operations = 0
        self._delay = 0.0
        self._delay_cut = threading.Event()
        #: Requests received, counted before any delay (``requests`` records them after).
        self.received = 0
        self.ca_certs: str | None = None
        self._auth: set[str] = set()
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._auth.add(f"Basic {token}")
        if api_key is not None:
            encoded = base64.b64encode(api_key.encode()).decode() if ":" in api_key else api_key
            self._auth.add(f"ApiKey {encoded}")
        if tls:
            self._ssl = self._make_tls()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalElasticsearch:
        """Start listening (called by ``with``). Returns self."""
        with self._lock:
            if self._server is not None:
                return self
            server = Server(("127.0.0.1", self._port), Handler)
            server.es = self
            server.ssl_context = self._ssl
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"local-es:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections. Idempotent."""
        self.down()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def down(self) -> None:
        """Refuse connections (and cut open ones) until :meth:`up`."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
            conns = list(self._connections)
            self._connections.clear()
        if server is not None:
            server.shutdown()
            server.server_close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(5)

    def up(self) -> None:
        """Listen again, on the same port."""
        self.start()

    def __enter__(self) -> LocalElasticsearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://localhost:PORT`` with ``tls=True``)."""
        if self._ssl is not None:
            return f"https://localhost:{self._port}"
        return f"http://127.0.0.1:{self._port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # -- looking inside ------------------------------------------------------------------------
    def documents(self, index: str) -> dict[str, dict[str, Any]]:
        """Every document of ``index`` (or data stream), by _id, refreshed or not."""
        with self._lock:
            idx = self._indices.get(index)
            return {} if idx is None else {k: orjson.loads(v[2]) for k, v in idx.docs.items()}

    def versions(self, index: str) -> dict[str, int]:
        """Each document's version: 1 when written once, more when written again."""
        with self._lock:
            idx = self._indices.get(index)
            return {} if idx is None else {k: v[0] for k, v in idx.docs.items()}

    def count(self, index: str) -> int:
        with self._lock:
            idx = self._indices.get(index)
            return 0 if idx is None else len(idx.docs)

    def mappings(self, index: str) -> dict[str, Any]:
        with self._lock:
            return self._indices[index].mappings

    def indices(self) -> list[str]:
        """Plain indices (not data streams)."""
        with self._lock:
            return sorted(n for n, i in self._indices.items() if not i.data_stream)

    def data_streams(self) -> list[str]:
        with self._lock:
            return sorted(n for n, i in self._indices.items() if i.data_stream)

    def templates(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {n: t.body for n, t in self._templates.items()}

    def refresh(self, index: str | None = None) -> None:
        with self._lock:
            for name, idx in self._indices.items():
                if index is None or name == index:
                    idx.refresh()

    def reset(self) -> None:
        """Forget every index, template, request and fault."""
        with self._lock:
            self._indices.clear()
            self._templates.clear()
            self.requests.clear()
            self.rejected.clear()
            self.bulk_requests = self.bulk_operations = 0
        self.clear_faults()

    def _make_tls(self) -> ssl.SSLContext:
        context, self._tmp, self.ca_certs = make_server_tls()
        return context

    # -- request handling (called on the server's threads) --------------------------------------
    def track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def main(argv: list[str] | None = None) -> None:
    """Run a LocalElasticsearch until interrupted; prints its URL on the first line."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="A local Elasticsearch stand-in for tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--refresh-interval", type=float, default=1.0)
    parser.add_argument(
        "--no-check-documents",
        action="store_true",
        help="keep documents as received, without parsing them against the mapping",
    )
    args = parser.parse_args(argv)
    server = LocalElasticsearch(
        port=args.port,
        refresh_interval=args.refresh_interval,
        record_requests=0,
        check_documents=not args.no_check_documents,
    ).start()
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    serve_until_interrupted(server.stop)


if __name__ == "__main__":
    main()
