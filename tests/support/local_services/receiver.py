"""``LocalReceiver``: a small HTTP server on 127.0.0.1 that stands in for a REST logging service
(Datadog intake, Grafana Loki push, an OpenTelemetry collector's ``/v1/logs``, CloudWatch Logs'
PutLogEvents, or any JSON endpoint), for tests and runnable examples that must work with no
network. ``python -m local_services.receiver --service datadog`` runs one on its own
and prints its URL; ``GET /_stats`` then answers ``{"records": n, "requests": m}``.

It records every request (method, path, headers, body gunzipped when ``Content-Encoding:
gzip``), checks the payload's documented shape and answers like the service: Datadog 202, Loki
204, OTLP 200, generic 200, CloudWatch 200 (with ``ResourceAlreadyExistsException`` and
``ResourceNotFoundException`` as CloudWatch sends them; signatures are not checked); a malformed
payload gets 400, a missing or wrong key 403. Knobs make
it fail: answer a sequence of statuses, fail every n-th request, take ``delay`` seconds per
request, or go ``down()`` (connection refused) and come back ``up()`` on the same port.

``lean=True`` (for benchmarks; ``--lean`` on the command line) skips the decoding: the receiver
reads the body, gunzips it, counts the records by their ``record_id`` key (CloudWatch's events by
their ``timestamp`` key: a text event has no record_id), checks the API key
and answers like the service, but keeps no records (``records()`` and ``record_ids()`` stay
empty; ``accepted_records`` and ``/_stats`` count).

    with LocalReceiver("datadog") as receiver:
        handler = RestAPIHandler("run-1", api_url=receiver.url, api_key="k",
                                 service_type="datadog")
        ...
        receiver.wait_for(100)
        assert len(receiver.record_ids()) == 100
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import orjson

from local_services.serve import serve_until_interrupted

__all__ = ["SERVICES", "LocalReceiver", "ReceivedRequest"]

#: Each service's endpoint path and success status.
SERVICES: dict[str, tuple[str, int]] = {
    "datadog": ("/api/v2/logs", 202),
    "grafana": ("/loki/api/v1/push", 204),
    "otlp": ("/v1/logs", 200),
    "generic": ("/logs", 200),
    "cloudwatch": ("/", 200),
}
_ALIASES = {"loki": "grafana"}


class ReceivedRequest(NamedTuple):
    """One request as the receiver saw it."""

    method: str
    path: str
    #: Header names in lower case.
    headers: dict[str, str]
    #: The body, gunzipped when it was sent gzipped.
    body: bytes
    #: The status the receiver answered.
    status: int
    #: The records the body held (decoded per service), when it was well formed and kept.
    records: list[dict[str, Any]]
    #: The record_id of each record the body held.
    record_ids: list[str | None]
    #: time.monotonic() when the request arrived.
    time: float

    def json(self) -> Any:
        return orjson.loads(self.body)


class _BadPayload(Exception):
    pass


def _check(ok: bool, why: str) -> None:
    if not ok:
        raise _BadPayload(why)


def _decode_datadog(body: bytes) -> list[dict[str, Any]]:
    data = orjson.loads(body)
    entries = data if isinstance(data, list) else [data]
    _check(len(entries) <= 1000, "more than 1000 entries")
    _check(len(body) <= 5 * 1024 * 1024, "payload above 5 MB")
    for entry in entries:
        _check(isinstance(entry, dict) and isinstance(entry.get("message"), str), "no message")
    return entries


def _decode_loki(body: bytes) -> list[dict[str, Any]]:
    data = orjson.loads(body)
    _check(isinstance(data, dict) and isinstance(data.get("streams"), list), "no streams")
    out = []
    for stream in data["streams"]:
        labels = stream.get("stream")
        _check(isinstance(labels, dict), "stream without labels")
        _check(all(isinstance(v, str) for v in labels.values()), "label values must be text")
        for value in stream.get("values") or []:
            _check(isinstance(value, list) and len(value) in (2, 3), "bad value")
            ts, line = value[0], value[1]
            _check(isinstance(ts, str) and ts.isdigit(), "timestamp must be ns as a string")
            _check(isinstance(line, str), "line must be text")
            meta = value[2] if len(value) == 3 else {}
            _check(isinstance(meta, dict), "structured metadata must be an object")
            _check(all(isinstance(v, str) for v in meta.values()), "metadata must be text")
            out.append({"labels": labels, "ts": ts, "line": line, "metadata": meta})
    return out


def _otlp_plain(value: dict[str, Any]) -> Any:
    for kind, item in value.items():
        if kind in {"stringValue", "doubleValue", "boolValue"}:
            return item
        if kind == "intValue":
            return int(item)
        if kind == "arrayValue":
            return [_otlp_plain(v) for v in item.get("values", [])]
        if kind == "kvlistValue":
            return {kv["key"]: _otlp_plain(kv["value"]) for kv in item.get("values", [])}
    return None


def _decode_otlp(body: bytes) -> list[dict[str, Any]]:
    data = orjson.loads(body)
    _check(isinstance(data, dict) and isinstance(data.get("resourceLogs"), list), "no resourceLogs")
    out = []
    for resource_logs in data["resourceLogs"]:
        resource = {
            kv["key"]: _otlp_plain(kv["value"])
            for kv in resource_logs.get("resource", {}).get("attributes", [])
        }
        for scope_logs in resource_logs.get("scopeLogs", []):
            for log in scope_logs.get("logRecords", []):
                _check(isinstance(log.get("timeUnixNano"), str), "timeUnixNano must be a string")
                _check(isinstance(log.get("severityNumber"), int), "severityNumber")
                _check(isinstance(log.get("body"), dict), "body must be an AnyValue")
                attrs = {kv["key"]: _otlp_plain(kv["value"]) for kv in log.get("attributes", [])}
                out.append({**log, "resource": resource, "attrs": attrs})
    return out


def _decode_generic(body: bytes) -> list[dict[str, Any]]:
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        data = orjson.loads(body)
    else:
        data = [orjson.loads(line) for line in body.splitlines() if line.strip()]
    _check(all(isinstance(rec, dict) for rec in data), "records must be objects")
    return list(data)


_DECODERS = {
    "datadog": _decode_datadog,
    "grafana": _decode_loki,
    "otlp": _decode_otlp,
    "generic": _decode_generic,
}


def _aws_error(code: str, message: str) -> tuple[int, list[dict[str, Any]], bytes]:
    return 400, [], orjson.dumps({"__type": code, "message": message})


def _check_log_events(events: Any) -> list[dict[str, Any]]:
    _check(isinstance(events, list) and 0 < len(events) <= 10_000, "1 to 10,000 events")
    size = 0
    last = None
    for event in events:
        _check(isinstance(event.get("timestamp"), int), "timestamp must be ms as a number")
        _check(isinstance(event.get("message"), str), "message must be text")
        _check(last is None or event["timestamp"] >= last, "events must be in time order")
        last = event["timestamp"]
        size += len(event["message"].encode()) + 26
    _check(size <= 1_048_576, "batch above 1,048,576 bytes")
    _check(events[-1]["timestamp"] - events[0]["timestamp"] <= 24 * 3600 * 1000, "over 24 h")
    out = []
    for event in events:
        try:
            record = orjson.loads(event["message"])
        except orjson.JSONDecodeError:
            record = {"message": event["message"]}
        if not isinstance(record, dict):
            record = {"message": event["message"]}
        out.append({**record, "_timestamp": event["timestamp"]})
    return out


#: What marks one record in a body, per service, for lean mode: the ``record_id`` key as each
#: encoder writes it. JSON escapes a quote inside a string, so a message cannot imitate it.
_MARKERS = {
    "datadog": b'"record_id":',
    "grafana": b'"record_id":',
    "generic": b'"record_id":',
    "otlp": b'{"key":"record_id",',
    # CloudWatch events are counted by their own key (the message may be text, without a
    # record_id): a quote inside the message string is escaped, so a message cannot imitate it.
    "cloudwatch": b'{"timestamp":',
}


def _cloudwatch_head(body: bytes) -> Any:
    """The request's JSON without its events (lean mode: the events are counted, not parsed)."""
    at = body.find(b',"logEvents":')
    if body.startswith(b"{") and at > 0:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(body[:at] + b"}")
    return orjson.loads(body)


def record_id_of(service: str, record: dict[str, Any]) -> str | None:
    """The record_id carried by one decoded record of ``service``."""
    if service == "grafana":
        found = record["metadata"].get("record_id")
    elif service == "otlp":
        found = record["attrs"].get("record_id")
    else:
        found = record.get("record_id")
    return None if found is None else str(found)


class LocalReceiver:
    """A threaded HTTP server on 127.0.0.1 that answers like ``service``.

    ``statuses``: statuses to answer first, one per request (then the normal answer).
    ``fail_every``: with ``(n, status)``, every n-th request gets ``status``.
    ``delay``: seconds to wait before answering each request.
    ``api_key``: when set, requests must carry it (DD-API-KEY for datadog, a bearer token or
    the basic-auth password otherwise) or get 403.
    ``max_records``: a request holding more records gets 413.
    ``retry_after``: the Retry-After header sent with 429 and 503 answers.
    ``ssl_context``: serve HTTPS with this server-side context.
    ``lean``: count records instead of decoding them (benchmarks; see the module's notes).
    """

    def __init__(
        self,
        service: str = "generic",
        *,
        port: int = 0,
        statuses: Iterable[int] = (),
        fail_every: tuple[int, int] | None = None,
        delay: float = 0.0,
        api_key: str | None = None,
        max_records: int | None = None,
        retry_after: float | None = None,
        keep_bodies: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        lean: bool = False,
    ) -> None:
        service = _ALIASES.get(service, service)
        if service not in SERVICES:
            raise ValueError(f"service: expected one of {', '.join(SERVICES)}, got {service!r}")
        self.service = service
        self.path, self.ok_status = SERVICES[service]
        self.delay = delay
        self.fail_every = fail_every
        self.api_key = api_key
        self.max_records = max_records
        self.retry_after = retry_after
        self.keep_bodies = keep_bodies
        self.ssl_context = ssl_context
        self.lean = lean
        self.requests: list[ReceivedRequest] = []
        self._statuses: deque[int] = deque(statuses)
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        self._count = 0
        self._accepted_records = 0
        self._conns: set[socket.socket] = set()
        self._groups: set[str] = set()
        self._streams: set[tuple[str, str]] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.up()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The service's endpoint: pass it as ``api_url``."""
        return self.base_url + self.path

    # -- control -------------------------------------------------------------------------------
    def up(self) -> None:
        """Start listening (again, on the same port after ``down()``)."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        server.daemon_threads = True
        server.block_on_close = False
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening and cut open connections: clients get "connection refused"."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def stop(self) -> None:
        self.down()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self._statuses.extend(statuses)

    def reset_failures(self) -> None:
        """Stop failing: forget queued statuses and ``fail_every``."""
        with self._lock:
            self._statuses.clear()
            self.fail_every = None

    def __enter__(self) -> LocalReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what arrived --------------------------------------------------------------------------
    def accepted(self) -> list[ReceivedRequest]:
        """The requests answered with success."""
        with self._lock:
            return [r for r in self.requests if r.status == self.ok_status]

    def records(self) -> list[dict[str, Any]]:
        """The records of every accepted request, in arrival order."""
        return [rec for req in self.accepted() for rec in req.records]

    def record_ids(self) -> list[str | None]:
        """The record_id of every record accepted, in arrival order (repeats included)."""
        return [rid for req in self.accepted() for rid in req.record_ids]

    @property
    def accepted_records(self) -> int:
        return self._accepted_records

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` records were accepted; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._accepted:
            while self._accepted_records < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._accepted.wait(left)
        return True

    # -- answering -----------------------------------------------------------------------------
    def _decide(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[dict[str, Any]] | int, bytes | None]:
        """(status, records accepted (a count in lean mode), answer body or None for the usual
        one)."""
        with self._lock:
            self._count += 1
            number = self._count
            forced = self._statuses.popleft() if self._statuses else None
        if forced is not None:
            return forced, [], None
        if self.fail_every is not None and number % self.fail_every[0] == 0:
            return self.fail_every[1], [], None
        if self.service == "cloudwatch":
            return self._cloudwatch(headers, body)
        if self.api_key is not None and not self._authorized(headers):
            return 403, [], None
        if self.lean:
            count = body.count(_MARKERS[self.service])
            if self.max_records is not None and count > self.max_records:
                return 413, [], None
            return self.ok_status, count, None
        try:
            records = _DECODERS[self.service](body)
        except (_BadPayload, orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            return 400, [], None
        if self.max_records is not None and len(records) > self.max_records:
            return 413, [], None
        return self.ok_status, records, None

    def _cloudwatch(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[dict[str, Any]] | int, bytes | None]:
        if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return _aws_error("MissingAuthenticationTokenException", "request is not signed")
        action = headers.get("x-amz-target", "").rpartition(".")[2]
        try:
            lean = self.lean and action == "PutLogEvents"
            data = _cloudwatch_head(body) if lean else orjson.loads(body)
            group = data["logGroupName"]
            stream = data.get("logStreamName")
            with self._lock:
                if action == "CreateLogGroup":
                    if group in self._groups:
                        return _aws_error("ResourceAlreadyExistsException", "group exists")
                    self._groups.add(group)
                    return 200, [], None
                if group not in self._groups:
                    return _aws_error("ResourceNotFoundException", "no such log group")
                if action == "CreateLogStream":
                    if (group, stream) in self._streams:
                        return _aws_error("ResourceAlreadyExistsException", "stream exists")
                    self._streams.add((group, stream))
                    return 200, [], None
                if action != "PutLogEvents":
                    return _aws_error("UnknownOperationException", action)
                if (group, stream) not in self._streams:
                    return _aws_error("ResourceNotFoundException", "no such log stream")
            if lean:
                count = body.count(_MARKERS["cloudwatch"])
                if self.max_records is not None and count > self.max_records:
                    return 413, [], None
                return 200, count, b'{"nextSequenceToken":"1"}'
            records = _check_log_events(data.get("logEvents"))
        except (_BadPayload, orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
            return _aws_error("InvalidParameterException", str(exc))
        if self.max_records is not None and len(records) > self.max_records:
            return 413, [], None
        return 200, records, b'{"nextSequenceToken":"1"}'

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = self.api_key or ""
        if self.service == "datadog":
            return headers.get("dd-api-key") == key
        auth = headers.get("authorization", "")
        if auth == f"Bearer {key}":
            return True
        if auth.startswith("Basic "):
            import base64

            with contextlib.suppress(ValueError):
                _, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                return password == key
        return False

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write, at flush()

            def setup(self) -> None:
                super().setup()
                # No Nagle's delay: with the client's delayed ACK it costs ~40 ms a request.
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with receiver._lock:
                    receiver._conns.add(self.connection)

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()
                with receiver._lock:
                    receiver._conns.discard(self.connection)

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = raw
                if headers.get("content-encoding", "").lower() == "gzip":
                    try:
                        body = gzip.decompress(raw)
                    except (OSError, EOFError, zlib.error):
                        self._answer(400, b'{"error":"bad gzip"}')
                        return
                status, records, answer = receiver._decide(headers, body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver._server is None:  # went down meanwhile: no answer
                    self.close_connection = True
                    return
                keep = receiver.keep_bodies
                if isinstance(records, int):  # lean mode: counted, not decoded
                    count, records, ids = records, [], []
                else:
                    count = len(records)
                    ids = [record_id_of(receiver.service, r) for r in records]
                request = ReceivedRequest(
                    "POST",
                    self.path,
                    headers,
                    body if keep else b"",
                    status,
                    records if keep else [],
                    ids,
                    arrived,
                )
                with receiver._accepted:
                    receiver.requests.append(request)
                    if status == receiver.ok_status:
                        receiver._accepted_records += count
                        receiver._accepted.notify_all()
                self._answer(status, answer or (b"" if status == 204 else b"{}"))

            def do_GET(self) -> None:
                if self.path != "/_stats":
                    self._answer(404, b"{}")
                    return
                with receiver._lock:
                    stats = {"records": receiver._accepted_records, "requests": receiver._count}
                self._answer(200, orjson.dumps(stats))

            def _answer(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    if status in (429, 503) and receiver.retry_after is not None:
                        self.send_header("Retry-After", str(receiver.retry_after))
                    if status != 204:
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if status != 204:
                        self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Run a receiver until killed: ``--service NAME --port N``; prints its base URL."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", default="generic", choices=sorted(SERVICES))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument(
        "--lean", action="store_true", help="count records instead of decoding them (benchmarks)"
    )
    args = parser.parse_args(argv)
    receiver = LocalReceiver(
        args.service, port=args.port, delay=args.delay, keep_bodies=False, lean=args.lean
    )
    print(receiver.base_url, flush=True)
    serve_until_interrupted(receiver.stop)


if __name__ == "__main__":
    main()
