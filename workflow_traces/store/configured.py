"""The store the TRACE_* settings point at: what ``runs`` and ``ui`` read when no location is
given. The first readable sink configured wins, in this order: SQLite, the file folder,
Elasticsearch (with the handler's credentials)."""

from __future__ import annotations

from typing import Any

from workflow_traces.errors import ConfigError
from workflow_traces.store.base import Store

__all__ = ["configured_store"]

_ORDER = ("sqlite", "file", "elasticsearch")


def configured_store() -> Store:
    """The store of the sink the TRACE_* settings (environment, .env, profile) configure.
    Raises ConfigError when they configure none that can be read back."""
    from workflow_traces.settings.effective import resolve
    from workflow_traces.settings.model import TraceSettings
    from workflow_traces.store.local import open_store

    effective = resolve(TraceSettings.load(), {})
    handlers: list[Any] = sorted(
        (h for h in effective.handlers if getattr(h, "type", None) in _ORDER),
        key=lambda h: _ORDER.index(h.type),
    )
    if not handlers:
        types = ", ".join(str(getattr(h, "type", "?")) for h in effective.handlers) or "none"
        raise ConfigError(
            "location: none given, and the TRACE_* settings configure no sink that can be read "
            f"back (configured: {types}; readable: sqlite, file, elasticsearch)"
        )
    cfg = handlers[0]
    if cfg.type != "elasticsearch":
        return open_store(cfg.path)
    from workflow_traces.store.elasticsearch import ElasticsearchStore

    hosts = cfg.es_hosts if isinstance(cfg.es_hosts, list) else cfg.es_hosts.split(",")
    return ElasticsearchStore.from_url(
        f"{hosts[0].strip().rstrip('/')}/{cfg.index_name}",
        username=cfg.username,
        password=cfg.password,
        api_key=cfg.api_key,
        ca_certs=cfg.ca_certs,
        verify_certs=cfg.verify_certs,
        timeout=cfg.timeout,
    )
