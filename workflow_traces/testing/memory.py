"""An in-memory sink, for users' own tests: a real sink (its own buffer and worker, like every
other) whose records can be read back.

Configure it like any sink type, ``{"type": "memory", "name": "checks"}`` (in ``extras``, in
``TRACE_HANDLERS``), or build one in code with :class:`MemoryHandler`; read the records with
:func:`memory_sink`::

    trace = get_trace("r1", extras={"handlers": [{"type": "memory", "name": "checks"}]})
    trace.info("loaded 3 rows")
    trace.close()
    assert memory_sink("checks").messages == ["loaded 3 rows"]

Every handler with the same ``name`` appends to the same :class:`MemoryRecords`, in this
process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from workflow_traces.core.record import Record
from workflow_traces.exporters.base import Exporter
from workflow_traces.pipeline.handler import BufferedHandler

__all__ = ["MemoryExporter", "MemoryHandler", "MemoryRecords", "memory_sink"]


class MemoryRecords(list[Record]):
    """The records a memory sink was given, in the order its worker wrote them."""

    @property
    def messages(self) -> list[str]:
        return [r.message for r in self if r.kind == "log"]

    @property
    def events(self) -> list[Record]:
        return [r for r in self if r.kind == "event"]

    def for_run(self, run_id: str) -> list[Record]:
        return [r for r in self if r.run_id == run_id]

    @property
    def record_ids(self) -> list[str]:
        return [r.record_id for r in self]


_lock = threading.Lock()
_sinks: dict[str, MemoryRecords] = {}


def memory_sink(name: str = "default") -> MemoryRecords:
    """The records of the memory sink called ``name`` (made empty on first use). Call
    ``.clear()`` on it between tests; records appear once the handler has written them (after
    ``trace.close()`` or ``flush()``)."""
    with _lock:
        return _sinks.setdefault(name, MemoryRecords())


class MemoryExporter(Exporter):
    """Appends each batch to ``memory_sink(name)``."""

    def __init__(self, name: str = "default") -> None:
        self.name = f"memory:{name}"
        self.records = memory_sink(name)

    @classmethod
    def from_config(cls, cfg: Any) -> MemoryExporter:
        """The exporter for a validated ``MemoryConfig`` (the sink registry's builder)."""
        return cls(cfg.name)

    def export(self, batch: Sequence[Record]) -> None:
        self.records.extend(batch)  # list.extend is atomic: readers see whole batches


class MemoryHandler(BufferedHandler):
    """A handler whose records go to ``memory_sink(name)``: use it where a test needs a real
    sink (``MultiHandler(handlers=[MemoryHandler(run_id)])``) and wants its records back."""

    def __init__(
        self,
        run_id: str = "memory",
        parent_run_id: str | None = None,
        extras: dict[str, Any] | None = None,
        *,
        name: str = "default",
        flush_interval: float = 0.1,
        fail_silently: bool = True,
        level: int = logging.NOTSET,
    ) -> None:
        exporter = MemoryExporter(name)
        super().__init__(
            exporter,
            run_id=run_id,
            parent_run_id=parent_run_id,
            extras=extras,
            flush_interval=flush_interval,
            fail_silently=fail_silently,
            level=level,
        )
        self.exporter = exporter

    @property
    def records(self) -> MemoryRecords:
        """Everything written so far (``flush()`` first to include what is still queued)."""
        return self.exporter.records
