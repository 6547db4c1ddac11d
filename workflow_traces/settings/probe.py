"""Trying each configured sink once, for ``workflow-traces config check``.

What is tried comes from the sink's config model (see ``SinkConfig``'s hooks), whatever its type:

- a package the sink needs is missing (``requirements()``): FAIL, naming what to install;
- a sink with ``endpoints()`` (REST, Elasticsearch): connect to each (an HTTP HEAD with a short
  timeout, no credentials sent) and report whether it answered; any HTTP status counts as
  reachable, since credentials are not checked;
- any other sink (file, SQLite, memory, third-party): build the real handler, write one probe
  record into the run ``workflow-traces-config-check`` and check it was written; when the sink
  has a ``store_location()``, read it back through ``open_store``, then remove the probe run
  (``remove_run``), so that it does not show among the user's runs.

Nothing printed here holds a secret: URLs lose their user info and query, and the sink's own
secret values are blanked out of error texts.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from workflow_traces.errors import TraceError
from workflow_traces.exporters.transport import safe_url

__all__ = ["PROBE_RUN_ID", "Probe", "describe_sink", "probe", "safe_url"]

#: The run the probe records are written to (one per check, all in this run).
PROBE_RUN_ID = "workflow-traces-config-check"
_MASK = "**********"


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


def describe_sink(cfg: Any) -> str:
    """``file ./logs``, ``restapi https://api.example.com/logs``: what a line is about."""
    describe = getattr(cfg, "describe", None)
    return str(describe()) if describe is not None else str(getattr(cfg, "type", "?"))


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
    from workflow_traces.errors import ConfigError
    from workflow_traces.settings.factory import check_requirements

    try:
        check_requirements(cfg)
        urls = cfg.endpoints()
    except ConfigError as exc:
        return Probe(False, str(exc).removeprefix("type: "))
    return _probe_urls(cfg, urls, timeout) if urls else _probe_write(cfg, timeout)


def _probe_write(cfg: Any, timeout: float) -> Probe:
    from workflow_traces.core.trace import Trace
    from workflow_traces.pipeline.multi import MultiHandler
    from workflow_traces.settings.factory import build_handler

    message = f"workflow-traces config check probe {uuid.uuid4().hex}"
    # The probe record must arrive as written: not sampled, limited or redacted away.
    probe_cfg = cfg.model_copy(
        update={"sample": None, "max_records_per_second": None, "redact": False}
    )
    try:
        handler = build_handler(probe_cfg, PROBE_RUN_ID, None, {}, fail_silently=False)
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
    location = cfg.store_location()
    if location is None:
        health = getattr(handler, "health", None)
        written = health().written if health is not None else 1
        if written >= 1:
            return Probe(True, f"wrote a probe record to run {PROBE_RUN_ID!r}")
        return Probe(False, f"a probe record to run {PROBE_RUN_ID!r} was not written")
    from workflow_traces.store.local import open_store

    try:
        with open_store(location) as store:
            records = store.get_run(PROBE_RUN_ID).records
    except (TraceError, OSError) as exc:
        return Probe(False, f"wrote a probe record but cannot read it back: {exc}")
    found = any(rec.message == message for rec in records)
    try:
        cfg.remove_run(PROBE_RUN_ID)  # the probe run must not show among the user's runs
    except Exception as exc:  # a sink's own hook: its failure is a FAIL line, not a traceback
        return Probe(False, f"wrote and read a probe record but cannot remove it: {exc}")
    if found:
        return Probe(True, "wrote a probe record, read it back and removed it")
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
    verify: Any = cfg.verify_tls()
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
