"""The HTTP side of :class:`~local_services.elasticsearch.LocalElasticsearch`: the
threaded server (TLS handshake on each connection's own thread), the request handler that reads
bodies (plain or chunked), applies the :attr:`delay`, and writes the answer with Elasticsearch's
headers (``X-Elastic-Product``, the compatible-with content type, gzip when accepted), plus the
error an endpoint raises to answer a status (:class:`HTTPError`), the one that drops the
connection without answering (:class:`Drop`) and the record of a request (:class:`LocalRequest`).
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

__all__ = [
    "COMPAT_JSON",
    "REASONS",
    "Backend",
    "Drop",
    "HTTPError",
    "Handler",
    "LocalRequest",
    "Server",
    "no_handler",
]

COMPAT_JSON = b"application/vnd.elasticsearch+json;compatible-with=8"
REASONS = {
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


@dataclass(frozen=True)
class LocalRequest:
    """One request as received (bodies are not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class HTTPError(Exception):
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


class Drop(Exception):
    """Close the connection without answering."""


def no_handler(method: str, path: str) -> HTTPError:
    return HTTPError(
        400,
        "illegal_argument_exception",
        f"no handler found for uri [{path}] and method [{method}]",
    )


class Backend(Protocol):
    """What the HTTP side needs of the server behind it (``LocalElasticsearch``): named here so
    this module does not import that one, which imports this."""

    #: Requests received, counted before any delay.
    received: int

    def track(self, conn: socket.socket, add: bool) -> None:
        """A connection opened (``add``) or closed."""

    def pending_delay(self) -> tuple[float, threading.Event]:
        """The delay to wait before answering, and the event that cuts it short when lifted."""
        ...

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one request: (status, JSON body or None, extra headers)."""
        ...


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    es: Backend
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


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.es.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.es.track(self.connection, False)

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
        delay, cut = es.pending_delay()  # read before the delay: lifting it sets this very event
        if delay:
            cut.wait(delay)
        try:
            status, result, extra = es.handle(self.command, self.path, headers, body)
        except Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = b"" if result is None else orjson.dumps(result)
        compat = "compatible-with" in headers.get("accept", "")
        head = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
            "X-Elastic-Product: Elasticsearch",
            "content-type: "
            + (COMPAT_JSON.decode() if compat else "application/json; charset=UTF-8"),
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
