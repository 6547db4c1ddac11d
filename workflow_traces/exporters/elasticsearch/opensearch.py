"""The OpenSearch sink: the Elasticsearch sink's documents, bulk writes, per-item retries, spool
and read-back, through the official ``opensearch-py`` client (the ``opensearch`` extra).

Only the client differs (``adapters.OpenSearchAdapter``): the Elasticsearch 8 client cannot
talk to OpenSearch (it sends ``compatible-with=8`` media types and checks the product header).
Everything else is the Elasticsearch sink's own code. OpenSearch has no API keys: authenticate
with ``username`` and ``password`` (or in the host URL).
"""

from __future__ import annotations

from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler

__all__ = ["OpenSearchHandler"]


class OpenSearchHandler(ElasticsearchHandler):
    """Sends records to OpenSearch with the bulk API, from the sink's worker thread. It takes
    the keys of :class:`ElasticsearchHandler` (``es_hosts`` names the OpenSearch hosts), but
    not ``api_key``."""

    product = "opensearch"
