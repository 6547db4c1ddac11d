"""Local stand-ins for the services our sinks write to, for this project's tests, examples and
benchmarks: an Elasticsearch-like server and an HTTP receiver, both on 127.0.0.1. Not part of
the workflow-traces wheel; the dev set-up installs it (``make install``)."""

from __future__ import annotations

from local_services.elasticsearch import LocalElasticsearch
from local_services.receiver import LocalReceiver, ReceivedRequest

__all__ = ["LocalElasticsearch", "LocalReceiver", "ReceivedRequest"]
