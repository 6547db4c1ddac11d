"""Helpers for testing code that uses workflow-traces: ``capture_traces`` to assert on records
in memory, and local stand-ins for the services our sinks write to, so tests and examples run
with no network."""

from __future__ import annotations

from ._capture import CapturedRecords, capture_traces
from .elasticsearch import LocalElasticsearch
from .receiver import LocalReceiver, ReceivedRequest

__all__ = [
    "CapturedRecords",
    "LocalElasticsearch",
    "LocalReceiver",
    "ReceivedRequest",
    "capture_traces",
]
