"""Helpers for testing code that uses workflow-traces: ``capture_traces`` to assert on records
in memory, and the in-memory sink (``{"type": "memory"}``, ``MemoryHandler``, ``memory_sink``)
for tests that need a real sink whose records they can read back."""

from __future__ import annotations

from workflow_traces.testing.capture import CapturedRecords, capture_traces
from workflow_traces.testing.memory import (
    MemoryExporter,
    MemoryHandler,
    MemoryRecords,
    memory_sink,
)

__all__ = [
    "CapturedRecords",
    "MemoryExporter",
    "MemoryHandler",
    "MemoryRecords",
    "capture_traces",
    "memory_sink",
]
