"""What the network sinks share: about URLs, a URL fit to print, whether a URL is this machine,
and the one report of settings that weaken security; and how much of a backlog one export
takes."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from workflow_traces.diagnostics import report

__all__ = ["backlog_group", "is_loopback", "report_insecure_transport", "safe_url"]


def backlog_group(buffer_size: int, backlog_records: int) -> int:
    """The exporter's ``group`` for a network sink: when a backlog waits, the worker hands it
    about ``backlog_records`` records at once (at least one batch of ``buffer_size``), which it
    sends in as few requests as the service's limits allow. A request costs the worker far more
    Python than a record does, so a backlog of small batches is slow to drain."""
    return max(1, backlog_records // buffer_size)


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: fit for names, reports and errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (localhost, or a loopback address)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def report_insecure_transport(
    name: str, urls: Sequence[str], *, verify: bool, verify_key: str, has_secret: bool
) -> None:
    """Report (once per sink) settings that weaken security: HTTPS without certificate checks
    (``verify_key`` names the setting), or credentials sent in clear text to another host."""
    if not verify and any(url.startswith("https://") for url in urls):
        report(
            f"tls-off:{name}",
            f"workflow-traces: sink {name} does not verify HTTPS certificates ({verify_key}=False)",
        )
    if has_secret and any(url.startswith("http://") and not is_loopback(url) for url in urls):
        report(
            f"plain-http:{name}",
            f"workflow-traces: sink {name} sends credentials over plain http",
        )
