"""Helpers for testing code that uses workflow-traces: ``capture_traces`` to assert on records
in memory."""

from __future__ import annotations

from workflow_traces.testing.capture import CapturedRecords, capture_traces

__all__ = [
    "CapturedRecords",
    "capture_traces",
]
