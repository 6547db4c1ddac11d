"""Where the network sinks plug in: REST (``_rest``) and Elasticsearch (``_elasticsearch``).

Their modules import httpx / elasticsearch lazily, so ``import workflow_traces`` stays light.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["build", "open_elasticsearch_store"]


def build(
    cfg: Any,
    run_id: str,
    parent_run_id: str | None,
    extras: dict[str, Any],
    common: dict[str, Any],
) -> logging.Handler:
    """The handler for a validated RestAPIConfig or ElasticsearchConfig."""
    if cfg.type == "restapi":
        from ._rest import build_rest_handler

        return build_rest_handler(cfg, run_id, parent_run_id, extras, common)
    from ._elasticsearch import build_elasticsearch_handler

    return build_elasticsearch_handler(cfg, run_id, parent_run_id, extras, common)


def open_elasticsearch_store(url: str) -> Any:
    """A Store over the Elasticsearch cluster at ``url``."""
    from ._elasticsearch_store import ElasticsearchStore

    return ElasticsearchStore.from_url(url)
