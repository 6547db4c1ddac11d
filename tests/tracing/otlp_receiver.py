"""A minimal OTLP/HTTP collector on 127.0.0.1 for the span tests: keeps each request's path and
(gunzipped) body, answers 200 with an empty ExportResponse."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class OtlpReceiver:
    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with lock:
                    outer.requests.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def bodies(self, path: str) -> list[bytes]:
        return [body for p, body in self.requests if p == path]

    def spans(self) -> list[dict[str, Any]]:
        out = []
        for body in self.bodies("/v1/traces"):
            for rs in orjson.loads(body)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    out.extend(ss["spans"])
        return out

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for body in self.bodies("/v1/logs"):
            for rl in orjson.loads(body)["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    out.extend(sl["logRecords"])
        return out

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
