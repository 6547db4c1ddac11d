"""Trying each configured sink once, for ``workflow-traces config check``.

File and SQLite: build the real handler, write one probe record into the run
``workflow-traces-config-check`` and read it back through the store. REST and Elasticsearch:
connect to the service (an HTTP HEAD with a short timeout, no credentials sent) and report
whether it answered; any HTTP status counts as reachable, since credentials are not checked.
Nothing printed here holds a secret: URLs lose their user info and query, and the sink's own
secret values are blanked out of error texts.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from workflow_traces.errors import TraceError
from workflow_traces.settings.config import (
    ElasticsearchConfig,
    FileConfig,
    RestAPIConfig,
    SQLiteConfig,
)

__all__ = ["PROBE_RUN_ID", "Probe", "describe_sink", "probe", "safe_url"]

#: The run the probe records are written to (one per check, all in this run).
PROBE_RUN_ID = "workflow-traces-config-check"
_MASK = "**********"


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to print."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _hosts(cfg: ElasticsearchConfig) -> list[str]:
    hosts = cfg.es_hosts
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    return [h.strip() for h in hosts if h.strip()]


def _rest_url(cfg: RestAPIConfig) -> str | None:
    if cfg.api_url:
        return cfg.api_url
    region = getattr(cfg, "region", None)
    if cfg.service_type == "cloudwatch" and region:
        return f"https://logs.{region}.amazonaws.com"
    return None


def describe_sink(cfg: Any) -> str:
    """``file ./logs``, ``restapi https://api.example.com/logs``: what a line is about."""
    if isinstance(cfg, FileConfig | SQLiteConfig):
        return f"{cfg.type} {cfg.path}"
    if isinstance(cfg, RestAPIConfig):
        url = _rest_url(cfg)
        return f"restapi ({cfg.service_type}) {safe_url(url) if url else '(no url)'}"
    if isinstance(cfg, ElasticsearchConfig):
        return f"{cfg.type} {', '.join(safe_url(h) for h in _hosts(cfg))}"  # or opensearch
    return str(getattr(cfg, "type", type(cfg).__name__))


def _secrets_of(cfg: Any) -> list[str]:
    out: list[str] = []
    for name in type(cfg).model_fields:
        value = getattr(cfg, name, None)
        values = list(value.values()) if isinstance(value, dict) else [value]
        out.extend(v.get_secret_value() for v in values if isinstance(v, SecretStr))
    return [text for text in out if text]


def _scrub(text: str, cfg: Any, urls: list[str]) -> str:
    for url in urls:
        text = text.replace(url, safe_url(url))
    for secret in _secrets_of(cfg):
        text = text.replace(secret, _MASK)
    return text


def probe(cfg: Any, timeout: float = 3.0) -> Probe:
    """Try the sink of one validated handler config once."""
    if isinstance(cfg, FileConfig | SQLiteConfig):
        return _probe_local(cfg, timeout)
    if isinstance(cfg, RestAPIConfig):
        url = _rest_url(cfg)
        if url is None:
            return Probe(False, "cannot tell the endpoint to check: set api_url or region")
        return _probe_urls(cfg, [url], timeout)
    if isinstance(cfg, ElasticsearchConfig):
        return _probe_urls(cfg, _hosts(cfg), timeout)
    return Probe(False, f"cannot check a handler of type {getattr(cfg, 'type', '?')!r}")


def _probe_local(cfg: FileConfig | SQLiteConfig, timeout: float) -> Probe:
    from workflow_traces.core.trace import Trace
    from workflow_traces.pipeline.multi import MultiHandler
    from workflow_traces.settings.factory import build_handler
    from workflow_traces.store.local import open_store

    message = f"workflow-traces config check probe {uuid.uuid4().hex}"
    try:
        handler = build_handler(cfg, PROBE_RUN_ID, None, {}, fail_silently=False)
    except (TraceError, OSError) as exc:
        return Probe(False, f"cannot open: {exc}")
    trace = Trace(
        PROBE_RUN_ID, handler=MultiHandler(PROBE_RUN_ID, handlers=[handler], fail_silently=False)
    )
    try:
        trace.info(message)
        trace.close(timeout=max(timeout, 5.0))
    except (TraceError, OSError) as exc:
        return Probe(False, f"write failed: {exc}")
    try:
        with open_store(cfg.path) as store:
            records = store.get_run(PROBE_RUN_ID).records
    except (TraceError, OSError) as exc:
        return Probe(False, f"wrote a probe record but cannot read it back: {exc}")
    if any(rec.message == message for rec in records):
        return Probe(True, f"wrote a probe record to run {PROBE_RUN_ID!r} and read it back")
    return Probe(False, f"wrote a probe record to run {PROBE_RUN_ID!r} but did not find it")


def _probe_urls(cfg: Any, urls: list[str], timeout: float) -> Probe:
    if not urls:
        return Probe(False, "no URL to connect to")
    results = [_reach(cfg, url, timeout) for url in urls]
    ok = any(r.ok for r in results)
    if len(results) == 1:
        return results[0]
    return Probe(
        ok, "; ".join(f"{safe_url(u)}: {r.detail}" for u, r in zip(urls, results, strict=True))
    )


def _reach(cfg: Any, url: str, timeout: float) -> Probe:
    ca_certs = getattr(cfg, "ca_certs", None)
    verify: Any = ca_certs or getattr(cfg, "verify_certs", getattr(cfg, "verify", True))
    try:
        import httpx
    except ImportError:
        return _reach_tcp(cfg, url, timeout)
    try:
        with httpx.Client(timeout=timeout, verify=verify, follow_redirects=False) as client:
            response = client.head(url)
    except httpx.HTTPError as exc:
        return Probe(False, f"unreachable ({type(exc).__name__}: {_scrub(str(exc), cfg, [url])})")
    except (OSError, ValueError) as exc:
        return Probe(False, f"unreachable ({type(exc).__name__}: {_scrub(str(exc), cfg, [url])})")
    return Probe(True, f"reachable (HTTP {response.status_code}; credentials not checked)")


def _reach_tcp(cfg: Any, url: str, timeout: float) -> Probe:
    """Without httpx: open a TCP connection to the URL's host and port."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return Probe(False, "unreachable (invalid URL)")
    if not host:
        return Probe(False, "unreachable (no host in the URL)")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return Probe(False, f"unreachable ({type(exc).__name__}: {_scrub(str(exc), cfg, [url])})")
    return Probe(True, "reachable (TCP connection opened; credentials not checked)")
