"""Helpers for testing code that uses workflow-traces: local stand-ins for the services our
sinks write to, so tests and examples run with no network."""

from __future__ import annotations

from .elasticsearch import LocalElasticsearch
from .receiver import LocalReceiver, ReceivedRequest

__all__ = ["LocalElasticsearch", "LocalReceiver", "ReceivedRequest"]
