"""Where the network sinks plug in: REST (``_rest``) and Elasticsearch (``_elasticsearch``).

Their modules import httpx / elasticsearch lazily, so ``import workflow_traces`` stays light.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from workflow_traces.diagnostics import report

__all__ = ["build", "is_loopback", "open_elasticsearch_store", "report_insecure_transport"]


def build(
    cfg: Any,
    run_id: str,
    parent_run_id: str | None,
    extras: dict[str, Any],
    common: dict[str, Any],
) -> logging.Handler:
    """The handler for a validated RestAPIConfig, ElasticsearchConfig or OpenSearchConfig:
    every field of the config is a keyword of the handler (``common`` holds the keys every
    handler type shares, and fail_silently)."""
    own = cfg.model_dump(exclude={"type", *common})
    if cfg.type == "restapi":
        from workflow_traces.exporters.rest.handler import RestAPIHandler

        return RestAPIHandler(run_id, parent_run_id, extras=extras, **own, **common)
    if cfg.type == "opensearch":
        from workflow_traces.exporters.elasticsearch.opensearch import OpenSearchHandler

        return OpenSearchHandler(run_id, parent_run_id, extras=extras, **own, **common)
    from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler

    return ElasticsearchHandler(run_id, parent_run_id, extras=extras, **own, **common)


def open_elasticsearch_store(url: str) -> Any:
    """A Store over the Elasticsearch (or, ``opensearch+https://...``, OpenSearch) cluster at
    ``url``."""
    from workflow_traces.store.elasticsearch import ElasticsearchStore

    return ElasticsearchStore.from_url(url)


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
