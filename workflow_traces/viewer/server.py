"""The viewer's server: the standard library's ThreadingHTTPServer over one Store.

Why not Starlette and uvicorn: the viewer is a local, single-user page that makes a few small
JSON requests and polls while a run is unfinished. ``http.server`` serves that well, starts in
milliseconds, needs no extra to install and no event loop; the store's reads are blocking
anyway. The routes:

    GET /                         the page (static/index.html; the rest of static/ beside it)
    GET /api/runs                 ?status= &workflow= &q= (run id holds) &offset= &limit=
    GET /api/runs/<id>            the run's summary and tree (child runs nested)
    GET /api/runs/<id>/records    ?level= &job= &stage= &text= &since= &after= (cursor) &limit=

Every answer carries a Content-Security-Policy that allows only the page's own files (no inline
script, no other origin), and a request whose Host is not the address served is refused (a
page elsewhere cannot read the logs through DNS rebinding). Logged text travels as JSON data
and the page puts it in the document as text only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from workflow_traces.errors import ConfigError, RunNotFoundError, TraceError
from workflow_traces.store.base import Store, child_counts, select_runs
from workflow_traces.store.jsonable import node_to_dict, record_to_json, summary_to_dict

__all__ = ["ViewerServer", "is_loopback_host", "serve"]

#: Records a page of the log pane holds, at most.
MAX_PAGE = 2000
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> bytes | None:
    if "/" in name or name.startswith(".") or not name:
        return None
    try:
        return resources.files("workflow_traces.viewer").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


class _Api:
    """The JSON answers, over one store used by one request at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.Lock()

    def runs(self, q: dict[str, str]) -> dict[str, Any]:
        limit = min(max(_int(q, "limit", 50), 1), 500)
        offset = max(_int(q, "offset", 0), 0)
        with self.lock:
            every = self.store.summaries()
        page = select_runs(
            every,
            q.get("workflow") or None,
            q.get("status") or None,
            roots=q.get("roots") == "1",
            search=q.get("q") or None,
        )[offset : offset + limit + 1]
        counts = child_counts(every)
        return {
            "runs": [summary_to_dict(s, counts.get(s.run_id, 0)) for s in page[:limit]],
            "more": len(page) > limit,
            "offset": offset,
            "workflows": sorted({s.workflow_name for s in every if s.workflow_name}),
        }

    def run(self, run_id: str) -> dict[str, Any]:
        with self.lock:
            summary = self.store.get_summary(run_id)
            tree = self.store.run_tree(run_id)
        return {"run": summary_to_dict(summary), "tree": node_to_dict(tree)}

    def records(self, run_id: str, q: dict[str, str]) -> dict[str, Any]:
        limit = min(max(_int(q, "limit", 500), 1), MAX_PAGE)
        with self.lock:
            got = list(
                self.store.iter_records(
                    run_id,
                    level=q.get("level") or None,
                    job=q.get("job") or None,
                    stage=q.get("stage") or None,
                    text=q.get("text") or None,
                    since=q.get("since") or None,
                    kind="log",
                    after=q.get("after") or None,
                    limit=limit + 1,
                )
            )
        page = got[:limit]
        return {
            "records": [record_to_json(r) for r in page],
            "cursor": page[-1].record_id if page else (q.get("after") or None),
            "more": len(got) > limit,
        }


def _int(q: dict[str, str], key: str, default: int) -> int:
    try:
        return int(q.get(key, default))
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {q.get(key)!r}") from None


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the terminal shows the URL, not every request

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, orjson.dumps(value, default=str), "application/json")

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        return host in self.server.allowed_hosts

    def do_GET(self) -> None:
        if not self._host_ok():
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"unknown host", "text/plain")
            return
        parts = urlsplit(self.path)
        path = parts.path
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif path in ("/", "/index.html"):
                self._file("index.html")
            elif path.startswith("/static/"):
                self._file(path[len("/static/") :])
            elif path == "/api/runs":
                self._json(200, self.server.api.runs(q))
            elif path.startswith("/api/runs/"):
                rest = path[len("/api/runs/") :]
                if rest.endswith("/records"):
                    run_id = unquote(rest[: -len("/records")])
                    self._json(200, self.server.api.records(run_id, q))
                else:
                    self._json(200, self.server.api.run(unquote(rest)))
            else:
                self._json(404, {"error": f"no such page: {path}"})
        except RunNotFoundError as exc:
            self._json(404, {"error": str(exc)})
        except ConfigError as exc:
            self._json(400, {"error": str(exc)})
        except TraceError as exc:
            self._json(502, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            return

    def _file(self, name: str) -> None:
        body = _static(name)
        if body is None:
            self._json(404, {"error": f"no such file: {name}"})
            return
        suffix = name[name.rfind(".") :]
        self._send(200, body, _TYPES.get(suffix, "application/octet-stream"))


class ViewerServer(ThreadingHTTPServer):
    """Serves the viewer over ``store`` at ``(host, port)`` (port 0: any free port)."""

    daemon_threads = True

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 8765) -> None:
        super().__init__((host, port), _Handler)
        self.api = _Api(store)
        self.store = store
        bound = self.server_address[1]
        # Bound to loopback: only requests naming this machine (no DNS rebinding). Bound to
        # another address on purpose: any Host.
        self.any_host = not is_loopback_host(host)
        names = ("127.0.0.1", "localhost", "[::1]", host)
        self.allowed_hosts = {f"{n}:{bound}" for n in names}

    @property
    def url(self) -> str:
        address, port = self.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else str(address)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port!s}/"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is an address of this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _AnyHostHandler(_Handler):
    def _host_ok(self) -> bool:
        return True


def serve(
    store: Store,
    host: str = "127.0.0.1",
    port: int = 8765,
    ready: Callable[[ViewerServer], None] | None = None,
) -> None:
    """Serve until interrupted; ``ready(server)`` is called once it listens."""
    server = ViewerServer(store, host, port)
    if server.any_host:
        server.RequestHandlerClass = _AnyHostHandler
    try:
        if ready is not None:
            ready(server)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
