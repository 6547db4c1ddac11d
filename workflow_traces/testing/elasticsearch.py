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
``python -c "from workflow_traces.testing.elasticsearch import main; main()" --port 9200``.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import gzip
import http.server
import math
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from ._es_search import Doc, SearchError, _compile_paths, filter_path, search_docs

__all__ = ["LocalElasticsearch", "LocalRequest"]

VERSION = "8.15.0"
_COMPAT_JSON = b"application/vnd.elasticsearch+json;compatible-with=8"
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_FAULT_TYPES = {
    400: "document_parsing_exception",
    401: "security_exception",
    403: "security_exception",
    404: "index_not_found_exception",
    409: "version_conflict_engine_exception",
    413: "request_entity_too_large",
    429: "es_rejected_execution_exception",
    500: "internal_server_error",
    503: "unavailable_shards_exception",
}
_INT_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
_FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
_TEXT_TYPES = {"keyword", "text", "match_only_text", "wildcard", "constant_keyword"}
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')
#: Value types that fit a field type with no further check.
_FAST_TYPES: dict[str, tuple[type, ...]] = {
    **{kind: (int,) for kind in _INT_TYPES},
    **{kind: (float, int) for kind in _FLOAT_TYPES},
    **{kind: (str,) for kind in _TEXT_TYPES},
    "date": (str, int),
    "date_nanos": (str, int),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class LocalRequest:
    """One request as received (bodies are not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Template:
    name: str
    patterns: list[str]
    priority: int
    data_stream: bool
    mappings: dict[str, Any]
    body: dict[str, Any]

    def matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


@dataclass
class _Index:
    name: str
    mappings: dict[str, Any]
    data_stream: bool = False
    template: str | None = None
    backing: str = ""
    # Sources are kept as the JSON bytes received (as Elasticsearch keeps _source): bytes and
    # tuples of them are not tracked by the garbage collector, so a big index costs no GC time.
    docs: dict[str, tuple[int, int, bytes]] = field(default_factory=dict)  # id: version, seq, src
    visible: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    last_refresh: float = field(default_factory=time.monotonic)
    uuid: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    checker: _Object | None = None  # the mapping compiled for the fast check

    def __post_init__(self) -> None:
        if not self.backing:
            if self.data_stream:
                day = time.strftime("%Y.%m.%d", time.gmtime())
                self.backing = f".ds-{self.name}-{day}-000001"
            else:
                self.backing = self.name

    def refresh(self) -> None:
        for doc_id in self.dirty:
            entry = self.docs.get(doc_id)
            if entry is None:
                self.visible.pop(doc_id, None)
            else:
                self.visible[doc_id] = (entry[1], entry[2])
        self.dirty.clear()
        self.last_refresh = time.monotonic()


class _HTTPError(Exception):
    def __init__(
        self, status: int, kind: str, reason: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind
        self.reason = reason
        self.headers = headers or {}

    def body(self, index: str | None = None) -> dict[str, Any]:
        cause: dict[str, Any] = {"type": self.kind, "reason": self.reason}
        if index is not None:
            cause["index"] = index
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


class _Drop(Exception):
    """Close the connection without answering."""


def _check_index_name(name: str) -> None:
    bad = (
        name != name.lower()
        or bool(_BAD_INDEX_CHARS & set(name))
        or name[:1] in ("-", "_", "+")
        or name in (".", "..")
        or len(name.encode()) > 255
    )
    if bad:
        raise _HTTPError(
            400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase"
        )


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _fits(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return all(_fits(kind, v) for v in value)
    if kind in _INT_TYPES or kind in _FLOAT_TYPES:
        return _is_int(value)
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false", "")
    if kind in ("date", "date_nanos"):
        return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
    if kind in _TEXT_TYPES:
        return not isinstance(value, dict)
    return True


def _infer(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if isinstance(value, dict):
        return {"properties": {}}
    return None


def _dynamic_template(templates: list[Any], path: str) -> dict[str, Any] | None:
    for item in templates:
        if not isinstance(item, dict):
            continue
        for spec in item.values():
            if fnmatch.fnmatchcase(path, spec.get("path_match", "\0")):
                mapping: dict[str, Any] = spec.get("mapping", {})
                return mapping
    return None


class _Object:
    """A mapped object compiled for :func:`_fits_fast`: each field's rule, and whether fields
    not in the mapping are allowed without a look (``dynamic: false``)."""

    __slots__ = ("fields", "lenient")

    def __init__(self, fields: dict[str, Any], lenient: bool) -> None:
        self.fields = fields
        self.lenient = lenient


_SKIP = object()


def _compile_checker(mappings: dict[str, Any], dynamic: Any = True) -> _Object:
    """Field rules: a tuple of value types that fit, an _Object, or _SKIP (not indexed)."""
    dynamic = mappings.get("dynamic", dynamic)
    fields: dict[str, Any] = {}
    for key, spec in (mappings.get("properties") or {}).items():
        if spec.get("enabled") is False:
            fields[key] = _SKIP
            continue
        kind = spec.get("type")
        if kind is None or kind == "object":
            fields[key] = _compile_checker(spec, dynamic)
        elif kind in _FAST_TYPES:
            fields[key] = _FAST_TYPES[kind]
        # any other type: left out, so its values take the full check
    return _Object(fields, dynamic in (False, "false"))


def _fits_fast(doc: dict[str, Any], checker: _Object) -> bool:
    """True when every value of ``doc`` plainly fits the compiled mapping. False means "look
    closer" (not necessarily a misfit). Objects one level down are checked inline (a function
    call per object would cost more than the check)."""
    fields = checker.fields
    for key, value in doc.items():
        rule = fields.get(key)
        if rule is None:
            if checker.lenient or value is None:
                continue
            return False
        if rule.__class__ is tuple:
            if type(value) not in rule:
                return False
        elif rule.__class__ is _Object:
            if type(value) is not dict:
                return False
            inner = rule.fields
            for key2, value2 in value.items():
                rule2 = inner.get(key2)
                if rule2 is None:
                    if rule.lenient or value2 is None:
                        continue
                    return False
                if rule2.__class__ is tuple:
                    if type(value2) not in rule2:
                        return False
                elif rule2.__class__ is _Object and (
                    type(value2) is not dict or not _fits_fast(value2, rule2)
                ):
                    return False
    return True


def _check_doc(
    doc: dict[str, Any],
    props: dict[str, Any],
    dynamic: Any,
    templates: list[Any],
    prefix: str,
    doc_id: str,
) -> None:
    """Raise _HTTPError(400) if ``doc`` does not fit the mapping; add dynamic fields."""
    fast = _FAST_TYPES
    for key, value in doc.items():
        spec = props.get(key)
        if spec is not None:
            kind = spec.get("type")
            if kind is not None:
                if type(value) in fast.get(kind, ()):
                    continue  # the common case: a value of the mapped type
            elif type(value) is dict and "properties" in spec and "dynamic" not in spec:
                _check_doc(value, spec["properties"], dynamic, templates, f"{prefix}{key}.", doc_id)
                continue
        if "." in key and key not in props:
            head, _, rest = key.partition(".")
            _check_doc({head: {rest: value}}, props, dynamic, templates, prefix, doc_id)
            continue
        path = f"{prefix}{key}"
        spec = props.get(key)
        if spec is None:
            if dynamic in (False, "false") or value is None:
                continue
            if dynamic == "strict":
                raise _HTTPError(
                    400,
                    "strict_dynamic_mapping_exception",
                    f"[1:2] mapping set to strict, dynamic introduction of [{key}] within "
                    f"[{prefix.rstrip('.') or '_doc'}] is not allowed",
                )
            spec = _dynamic_template(templates, path) or _infer(value)
            if spec is None:
                continue
            props[key] = spec
        if spec.get("enabled") is False:
            continue
        kind = spec.get("type", "object" if "properties" in spec else None)
        if kind in ("object", "nested") or (kind is None and "properties" in spec):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise _HTTPError(
                        400,
                        "document_parsing_exception",
                        f"[1:2] object mapping for [{path}] tried to parse field [{key}] as "
                        "object, but found a concrete value",
                    )
                sub = spec.setdefault("properties", {})
                _check_doc(item, sub, spec.get("dynamic", dynamic), templates, path + ".", doc_id)
        elif kind is not None and not _fits(kind, value):
            preview = str(value)[:20]
            raise _HTTPError(
                400,
                "document_parsing_exception",
                f"[1:2] failed to parse field [{path}] of type [{kind}] in document with id "
                f"'{doc_id}'. Preview of field's value: '{preview}'",
            )


def _item_keys(spec: str | None) -> tuple[str, ...] | None:
    """For a ``filter_path`` like ``errors,items.*.status,items.*.error``: the keys kept in each
    bulk item. None when the filter has another shape (then it is applied the general way)."""
    if not spec:
        return None
    tree = _compile_paths(spec)
    if not set(tree) <= {"errors", "took", "items"} or any(
        tree[k] is not True for k in tree if k != "items"
    ):
        return None
    items = tree.get("items")
    if items is None:
        return ()
    if not isinstance(items, dict) or set(items) != {"*"} or not isinstance(items["*"], dict):
        return None
    leaves = items["*"]
    if any(v is not True for v in leaves.values()):
        return None
    return tuple(leaves)


class LocalElasticsearch:
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
        self._indices: dict[str, _Index] = {}
        self._templates: dict[str, _Template] = {}
        self._seq = 0
        self._item_faults: deque[list[Any]] = deque()
        self._request_faults: deque[list[Any]] = deque()
        self._lose = 0
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
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
            server = _Server(("127.0.0.1", self._port), _Handler)
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
    def delay(self) -> float:
        """Seconds to wait before answering each request. Setting it to 0 also ends the
        waits in progress."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay = max(0.0, float(seconds))
        if not self._delay:
            self._delay_cut.set()
            self._delay_cut = threading.Event()

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

    # -- fault knobs ---------------------------------------------------------------------------
    def fail_items(self, count: int, status: int = 429, reason: str | None = None) -> None:
        """Answer the next ``count`` bulk items with ``status`` (nothing is written for them)."""
        with self._lock:
            self._item_faults.append([count, status, reason])

    def fail_requests(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: float | None = None,
        path: str = "_bulk",
        reason: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests whose path contains ``path`` with ``status``."""
        with self._lock:
            self._request_faults.append([count, status, retry_after, path, reason])

    def lose_responses(self, count: int) -> None:
        """Apply the next ``count`` bulk requests, then close the connection without answering
        (as when a response is lost on the way): the client sees a connection error."""
        with self._lock:
            self._lose += count

    def clear_faults(self) -> None:
        with self._lock:
            self._item_faults.clear()
            self._request_faults.clear()
            self._lose = 0
            self.delay = 0.0

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

    # -- TLS -----------------------------------------------------------------------------------
    def _make_tls(self) -> ssl.SSLContext:
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._tmp = tempfile.mkdtemp(prefix="local-es-tls-")
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LocalElasticsearch CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_path = os.path.join(self._tmp, "ca.pem")
        cert_path = os.path.join(self._tmp, "server.pem")
        key_path = os.path.join(self._tmp, "server.key")
        with open(ca_path, "wb") as fh:
            fh.write(ca.public_bytes(serialization.Encoding.PEM))
        with open(cert_path, "wb") as fh:
            fh.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self.ca_certs = ca_path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context

    # -- request handling (called on the server's threads) --------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _authorized(self, headers: dict[str, str]) -> bool:
        return not self._auth or headers.get("authorization", "") in self._auth

    def _request_fault(self, path: str) -> _HTTPError | None:
        with self._lock:
            for fault in self._request_faults:
                count, status, retry_after, where, reason = fault
                if where in path:
                    fault[0] = count - 1
                    if fault[0] <= 0:
                        self._request_faults.remove(fault)
                    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
                    kind = _FAULT_TYPES.get(status, "exception")
                    return _HTTPError(status, kind, reason or f"simulated {status}", headers)
        return None

    def _item_fault(self) -> tuple[int, str] | None:
        faults = self._item_faults
        while faults:
            fault = faults[0]
            if fault[0] <= 0:
                faults.popleft()
                continue
            fault[0] -= 1
            status = fault[1]
            return status, fault[2] or f"simulated {status}"
        return None

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
            err = _HTTPError(
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
                err = _HTTPError(400, "parse_exception", "request body is not valid gzip")
                return err.status, err.body(), {}
        try:
            status, result = self._route(method, path, query, body)
        except _HTTPError as err:
            return err.status, err.body(), err.headers
        except SearchError as err:
            http_err = _HTTPError(400, err.kind, err.reason)
            return 400, http_err.body(), {}
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as err:
            http_err = _HTTPError(400, "parsing_exception", f"{type(err).__name__}: {err}")
            return 400, http_err.body(), {}
        if method == "HEAD":
            return status, None, {}
        return status, filter_path(result, query.get("filter_path")), {}

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        segs = [s for s in path.split("/") if s]
        if not segs:
            if method in ("GET", "HEAD"):
                return 200, self._info()
            raise self._no_handler(method, path)
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
            raise self._no_handler(method, path)
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
            raise self._no_handler(method, path)
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
        raise self._no_handler(method, path)

    @staticmethod
    def _no_handler(method: str, path: str) -> _HTTPError:
        return _HTTPError(
            400,
            "illegal_argument_exception",
            f"no handler found for uri [{path}] and method [{method}]",
        )

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

    # -- indices -------------------------------------------------------------------------------
    def _resolve(self, expr: str, query: dict[str, str], strict: bool = True) -> list[_Index]:
        """The indices an index expression names (comma list, wildcards, _all)."""
        lenient = query.get("ignore_unavailable") == "true"
        found: list[_Index] = []
        with self._lock:
            for part in expr.split(","):
                if part in ("_all", "*"):
                    found.extend(self._indices.values())
                elif "*" in part or "?" in part:
                    found.extend(
                        i for n, i in self._indices.items() if fnmatch.fnmatchcase(n, part)
                    )
                elif part in self._indices:
                    found.append(self._indices[part])
                else:
                    backing = [i for i in self._indices.values() if i.backing == part]
                    if backing:
                        found.extend(backing)
                    elif strict and not lenient:
                        raise _HTTPError(
                            404, "index_not_found_exception", f"no such index [{part}]"
                        )
                    elif not strict:
                        return []
        unique = {id(i): i for i in found}
        return list(unique.values())

    def _one_index(self, name: str) -> _Index:
        indices = self._resolve(name, {})
        return indices[0]

    def _matching_template(self, name: str) -> _Template | None:
        best: _Template | None = None
        for template in self._templates.values():
            if template.matches(name) and (best is None or template.priority > best.priority):
                best = template
        return best

    def _new_index(self, name: str, mappings: dict[str, Any] | None) -> _Index:
        template = self._matching_template(name)
        if mappings is None:
            mappings = orjson.loads(orjson.dumps(template.mappings)) if template else {}
        idx = _Index(
            name,
            mappings,
            data_stream=bool(template and template.data_stream),
            template=template.name if template else None,
        )
        self._indices[name] = idx
        return idx

    def _create_index(self, name: str, body: bytes) -> tuple[int, Any]:
        _check_index_name(name)
        spec = orjson.loads(body) if body.strip() else {}
        with self._lock:
            if name in self._indices:
                raise _HTTPError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{name}/{self._indices[name].uuid}] already exists",
                )
            template = self._matching_template(name)
            if template is not None and template.data_stream:
                raise _HTTPError(
                    400,
                    "illegal_argument_exception",
                    f"cannot create index with name [{name}], because it matches with template "
                    f"[{template.name}] that creates data streams only, use create data stream "
                    "api instead",
                )
            self._new_index(name, spec.get("mappings"))
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _get_index(self, expr: str, query: dict[str, str]) -> dict[str, Any]:
        return {
            idx.backing: {
                "aliases": {},
                "mappings": idx.mappings,
                "settings": {"index": {"uuid": idx.uuid, "provided_name": idx.name}},
                **({"data_stream": idx.name} if idx.data_stream else {}),
            }
            for idx in self._resolve(expr, query)
        }

    def _delete_index(self, expr: str) -> tuple[int, Any]:
        with self._lock:
            for idx in self._resolve(expr, {}):
                if idx.data_stream:
                    raise _HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"index [{idx.name}] is a data stream: delete it with the data stream api",
                    )
                del self._indices[idx.name]
        return 200, {"acknowledged": True}

    def _get_doc(self, index: str, doc_id: str) -> tuple[int, Any]:
        with self._lock:
            idx = self._one_index(index)
            entry = idx.docs.get(doc_id)
            if entry is None:
                return 404, {"_index": idx.backing, "_id": doc_id, "found": False}
            version, seq, source = entry
            return 200, {
                "_index": idx.backing,
                "_id": doc_id,
                "_version": version,
                "_seq_no": seq,
                "_primary_term": 1,
                "found": True,
                "_source": orjson.loads(source),
            }

    def _refresh(self, expr: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            indices = self._resolve(expr, query)
            for idx in indices:
                idx.refresh()
        shards = len(indices)
        return 200, {"_shards": {"total": shards, "successful": shards, "failed": 0}}

    # -- templates and data streams ------------------------------------------------------------
    def _template(
        self, method: str, name: str | None, body: bytes, query: dict[str, str]
    ) -> tuple[int, Any]:
        with self._lock:
            if method in ("GET", "HEAD"):
                found = [
                    t
                    for n, t in self._templates.items()
                    if name is None or fnmatch.fnmatchcase(n, name)
                ]
                if name is not None and not found:
                    if method == "HEAD":
                        return 404, None
                    raise _HTTPError(
                        404,
                        "resource_not_found_exception",
                        f"index template matching [{name}] not found",
                    )
                return 200, {
                    "index_templates": [{"name": t.name, "index_template": t.body} for t in found]
                }
            if name is None:
                raise self._no_handler(method, "/_index_template")
            if method == "DELETE":
                if self._templates.pop(name, None) is None:
                    raise _HTTPError(
                        404, "resource_not_found_exception", f"index_template [{name}] missing"
                    )
                return 200, {"acknowledged": True}
            if method not in ("PUT", "POST"):
                raise self._no_handler(method, f"/_index_template/{name}")
            spec = orjson.loads(body) if body.strip() else {}
            if query.get("create") == "true" and name in self._templates:
                raise _HTTPError(
                    400, "illegal_argument_exception", f"index template [{name}] already exists"
                )
            patterns = spec.get("index_patterns")
            if isinstance(patterns, str):
                patterns = [patterns]
            if not patterns:
                raise _HTTPError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index patterns are missing;",
                )
            priority = int(spec.get("priority", 0))
            for other in self._templates.values():
                overlap = any(
                    fnmatch.fnmatchcase(p, q) or fnmatch.fnmatchcase(q, p)
                    for p in patterns
                    for q in other.patterns
                )
                if other.name != name and overlap and other.priority == priority:
                    raise _HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"index template [{name}] has index patterns {patterns} matching "
                        f"patterns from existing templates [{other.name}] with patterns "
                        f"({other.name} => {other.patterns}) that have the same priority "
                        f"[{priority}], multiple index templates may not match during index "
                        "creation, please use a different priority",
                    )
            self._templates[name] = _Template(
                name=name,
                patterns=list(patterns),
                priority=priority,
                data_stream="data_stream" in spec,
                mappings=(spec.get("template") or {}).get("mappings") or {},
                body=spec,
            )
        return 200, {"acknowledged": True}

    def _data_stream(self, method: str, name: str | None) -> tuple[int, Any]:
        with self._lock:
            if method == "GET":
                streams = [
                    i
                    for n, i in self._indices.items()
                    if i.data_stream and (name is None or fnmatch.fnmatchcase(n, name))
                ]
                if name is not None and "*" not in name and not streams:
                    raise _HTTPError(404, "index_not_found_exception", f"no such index [{name}]")
                return 200, {"data_streams": [self._stream_info(i) for i in streams]}
            if name is None:
                raise self._no_handler(method, "/_data_stream")
            if method == "PUT":
                _check_index_name(name)
                if name in self._indices:
                    raise _HTTPError(
                        400,
                        "resource_already_exists_exception",
                        f"data_stream [{name}] already exists",
                    )
                template = self._matching_template(name)
                if template is None or not template.data_stream:
                    raise _HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"no matching index template found for data stream [{name}]",
                    )
                self._new_index(name, None)
                return 200, {"acknowledged": True}
            if method == "DELETE":
                idx = self._indices.get(name)
                if idx is None or not idx.data_stream:
                    raise _HTTPError(404, "index_not_found_exception", f"no such index [{name}]")
                del self._indices[name]
                return 200, {"acknowledged": True}
        raise self._no_handler(method, f"/_data_stream/{name}")

    @staticmethod
    def _stream_info(idx: _Index) -> dict[str, Any]:
        return {
            "name": idx.name,
            "timestamp_field": {"name": "@timestamp"},
            "indices": [{"index_name": idx.backing, "index_uuid": idx.uuid}],
            "generation": 1,
            "status": "GREEN",
            "template": idx.template,
            "hidden": False,
            "system": False,
            "allow_custom_routing": False,
            "replicated": False,
        }

    # -- bulk ----------------------------------------------------------------------------------
    def _bulk(
        self, default_index: str | None, body: bytes, query: dict[str, str]
    ) -> tuple[int, Any]:
        started = time.perf_counter()
        lines = body.split(b"\n")
        ops: list[tuple[str, str, str | None, Any, bytes]] = []
        loads = orjson.loads
        check = self.check_documents
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            i += 1
            if not line or line.isspace():
                continue
            try:
                ((op, meta),) = loads(line).items()
            except orjson.JSONDecodeError:
                raise _HTTPError(
                    400, "x_content_parse_exception", f"[1:1] Malformed action/metadata line [{i}]"
                ) from None
            except (AttributeError, ValueError):
                raise _HTTPError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i}], expected START_OBJECT or END_OBJECT",
                ) from None
            if op not in _BULK_OPS or type(meta) is not dict:
                raise _HTTPError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i}], expected field [create], [delete], "
                    f"[index] or [update] but found [{op}]",
                )
            index = meta.get("_index") or default_index
            if not index:
                raise _HTTPError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                )
            source: Any = None
            raw = b""
            if op != "delete":
                raw = lines[i] if i < n else b""
                if not raw or raw.isspace():
                    raise _HTTPError(
                        400,
                        "illegal_argument_exception",
                        f"The bulk request must be terminated by a newline [\\n] (line {i})",
                    )
                i += 1
                if check or op == "update":
                    try:
                        source = loads(raw)
                    except orjson.JSONDecodeError:
                        source = _BAD_JSON
                else:
                    source = _UNPARSED
            doc_id = meta.get("_id")
            ops.append((op, index, doc_id if doc_id is None else str(doc_id), source, raw))
        items = []
        errors = False
        keys = _item_keys(query.get("filter_path"))
        only_status = keys is not None and "status" in keys and set(keys) <= {"status", "error"}
        with self._lock:
            self.bulk_requests += 1
            self.bulk_operations += len(ops)
            touched: set[str] = set()
            indices = self._indices
            for op, index, doc_id, source, raw in ops:
                item: dict[str, Any] | None = None
                if (
                    op in ("index", "create")
                    and doc_id is not None
                    and (type(source) is dict or source is _UNPARSED)
                    and not self._item_faults
                ):
                    # The common case, inline: a new or replaced document in an existing index
                    # that plainly fits its mapping. Anything else takes _apply's full path.
                    idx = indices.get(index)
                    if idx is not None and (op == "create" or not idx.data_stream):
                        existing = idx.docs.get(doc_id)
                        checker = idx.checker
                        if checker is None:
                            checker = idx.checker = _compile_checker(idx.mappings)
                        if source is _UNPARSED:
                            fits = raw[:1] == b"{" and (
                                not idx.data_stream or b'"@timestamp"' in raw
                            )
                        else:
                            parsed: dict[str, Any] = source
                            fits = (not idx.data_stream or "@timestamp" in parsed) and _fits_fast(
                                parsed, checker
                            )
                        if (existing is None or op == "index") and fits:
                            self._seq += 1
                            version = 1 if existing is None else existing[0] + 1
                            idx.docs[doc_id] = (version, self._seq, raw)
                            idx.dirty.add(doc_id)
                            touched.add(index)
                            if only_status:
                                # What filter_path keeps of a success: its status alone.
                                items.append(_CREATED[op] if existing is None else _UPDATED[op])
                                continue
                            item = {
                                "_index": idx.backing,
                                "_id": doc_id,
                                "_version": version,
                                "result": "created" if existing is None else "updated",
                                "_shards": _SHARDS,
                                "_seq_no": self._seq,
                                "_primary_term": 1,
                                "status": 201 if existing is None else 200,
                            }
                if item is None:
                    item = self._apply(op, index, doc_id, source, raw)
                status = item["status"]
                if status >= 300:
                    errors = True
                    self.rejected.append((status, item.get("_id", "")))
                else:
                    touched.add(index)
                if keys is None:
                    items.append({op: item})
                else:  # filter_path applied here, item by item (the common, fast case)
                    kept = {k: item[k] for k in keys if k in item}
                    if kept:
                        items.append({op: kept})
            if query.get("refresh") in ("", "true", "wait_for"):
                for name in touched:
                    idx = self._indices.get(name)
                    if idx is not None:
                        idx.refresh()
            lose = self._lose > 0
            if lose:
                self._lose -= 1
        if lose:
            raise _Drop
        took = int((time.perf_counter() - started) * 1000)
        result = {"errors": errors, "took": took, "items": items}
        if keys is not None:
            wanted = _compile_paths(query.pop("filter_path"))
            result = {k: v for k, v in result.items() if k in wanted and (k != "items" or v)}
        return 200, result

    def _apply(
        self, op: str, index: str, doc_id: str | None, source: Any, raw: bytes
    ) -> dict[str, Any]:
        fault = self._item_fault() if self._item_faults else None
        if fault is not None:
            status, reason = fault
            return {
                "_index": index,
                "_id": doc_id or "",
                "status": status,
                "error": {"type": _FAULT_TYPES.get(status, "exception"), "reason": reason},
            }
        try:
            idx = self._indices.get(index)
            if idx is None:
                _check_index_name(index)
                if op in ("update", "delete"):
                    raise _HTTPError(404, "index_not_found_exception", f"no such index [{index}]")
                template = self._matching_template(index)
                if template is not None and template.data_stream and op != "create":
                    raise _HTTPError(
                        400,
                        "illegal_argument_exception",
                        "only write ops with an op_type of create are allowed in data streams",
                    )
                idx = self._new_index(index, None)
            if idx.data_stream and op != "create":
                raise _HTTPError(
                    400,
                    "illegal_argument_exception",
                    "only write ops with an op_type of create are allowed in data streams",
                )
            return self._write(idx, op, doc_id, source, raw)
        except _HTTPError as err:
            return {
                "_index": index,
                "_id": doc_id or "",
                "status": err.status,
                "error": {"type": err.kind, "reason": err.reason, "index": index},
            }

    def _write(
        self, idx: _Index, op: str, doc_id: str | None, source: Any, raw: bytes
    ) -> dict[str, Any]:
        if doc_id is None:
            if op in ("update", "delete"):
                raise _HTTPError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: id is missing;",
                )
            doc_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
        existing = idx.docs.get(doc_id)
        if op == "delete":
            if existing is None:
                return self._item(idx, doc_id, 1, "not_found", 404)
            del idx.docs[doc_id]
            idx.dirty.add(doc_id)
            return self._item(idx, doc_id, existing[0] + 1, "deleted", 200)
        if source is _UNPARSED:
            try:
                source = orjson.loads(raw)
            except orjson.JSONDecodeError:
                source = _BAD_JSON
        if source is _BAD_JSON or not isinstance(source, dict):
            raise _HTTPError(
                400, "document_parsing_exception", "[1:1] failed to parse: not a JSON object"
            )
        if op == "update":
            if existing is None:
                raise _HTTPError(404, "document_missing_exception", f"[{doc_id}]: document missing")
            partial = source.get("doc")
            if not isinstance(partial, dict):
                raise _HTTPError(400, "action_request_validation_exception", "doc is missing")
            source = {**orjson.loads(existing[2]), **partial}
            raw = orjson.dumps(source)
        if op == "create" and existing is not None:
            raise _HTTPError(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists "
                f"(current version [{existing[0]}])",
            )
        if idx.data_stream and "@timestamp" not in source:
            raise _HTTPError(
                400,
                "document_parsing_exception",
                "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
            )
        mappings = idx.mappings
        checker = idx.checker
        if checker is None:
            checker = idx.checker = _compile_checker(mappings)
        if not _fits_fast(source, checker):
            # Unknown fields, odd values or a misfit: the full check (dynamic mapping, errors).
            _check_doc(
                source,
                mappings.setdefault("properties", {}),
                mappings.get("dynamic", True),
                mappings.get("dynamic_templates", []),
                "",
                doc_id,
            )
            idx.checker = None  # the mapping may have grown
        self._seq += 1
        version = 1 if existing is None else existing[0] + 1
        idx.docs[doc_id] = (version, self._seq, raw)
        idx.dirty.add(doc_id)
        if existing is None:
            return self._item(idx, doc_id, version, "created", 201)
        return self._item(idx, doc_id, version, "updated", 200)

    def _item(
        self, idx: _Index, doc_id: str, version: int, result: str, status: int
    ) -> dict[str, Any]:
        return {
            "_index": idx.backing,
            "_id": doc_id,
            "_version": version,
            "result": result,
            "_shards": _SHARDS,
            "_seq_no": self._seq,
            "_primary_term": 1,
            "status": status,
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


_BAD_JSON = object()
# Bulk items as filter_path "items.*.status" leaves a success (shared, never changed).
_CREATED = {op: {op: {"status": 201}} for op in ("index", "create")}
_UPDATED = {op: {op: {"status": 200}} for op in ("index", "create")}
_UNPARSED: Any = object()  # check_documents=False: the source is kept as received
_BULK_OPS = frozenset({"index", "create", "update", "delete"})
_SHARDS = {"total": 2, "successful": 1, "failed": 0}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    es: LocalElasticsearch
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
            return
        # The TLS handshake runs here, on the connection's own thread.
        try:
            wrapped = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        try:
            self.RequestHandlerClass(wrapped, client_address, self)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                wrapped.shutdown(socket.SHUT_RDWR)
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that went away is not worth a traceback


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.es._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.es._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        es = self.server.es
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        es.received += 1
        cut = es._delay_cut  # read before the delay: lifting it sets this very event
        delay = es._delay
        if delay:
            cut.wait(delay)
        try:
            status, result, extra = es.handle(self.command, self.path, headers, body)
        except _Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = b"" if result is None else orjson.dumps(result)
        compat = "compatible-with" in headers.get("accept", "")
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "X-Elastic-Product: Elasticsearch",
            "content-type: "
            + (_COMPAT_JSON.decode() if compat else "application/json; charset=UTF-8"),
        ]
        if payload and len(payload) > 1024 and "gzip" in headers.get("accept-encoding", ""):
            payload = gzip.compress(payload, 1)
            head.append("content-encoding: gzip")
        for key, value in extra.items():
            head.append(f"{key}: {value}")
        if self.command == "HEAD":
            head.append("content-length: 0")
            payload = b""
        else:
            head.append(f"content-length: {len(payload)}")
        if self.close_connection:
            head.append("connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


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
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
