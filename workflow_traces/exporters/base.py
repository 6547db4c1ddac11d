"""The interface every destination implements. Exporters own no threads and no queues: a sink's
worker hands them a batch, and they write it and return, or raise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from workflow_traces.core.record import Record

__all__ = ["ExportResult", "Exporter"]


@dataclass
class ExportResult:
    """What an exporter returns when only part of a batch went through.

    ``retry`` holds records worth sending again later; ``rejected`` counts records the
    destination refused for good; ``error`` is the cause, for the health summary.
    """

    retry: list[Record] = field(default_factory=list)
    rejected: int = 0
    error: BaseException | None = None


class Exporter(Protocol):
    """Writes batches of records to one destination."""

    #: A short name for reports, such as ``"file:./logs"``. Never holds a secret.
    name: str

    # Optional class attributes the worker reads:
    #   takes_values: bool = False - batches hold plain tuples of a record's values, indexed
    #       with the F_* positions of ``_record``, instead of Records; a tuple's record id may
    #       be its counter alone, an int (see "Record ids" in ``_record``);
    #   group: int = 1 - a backlog is handed over up to this many batches at a time.

    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        """Write ``batch``. Return None when all of it was written, an ExportResult when only
        part was, or raise when none was."""
        ...

    def close(self) -> None:
        """Release what the exporter holds. Called once, on the worker thread."""
        ...

    def after_fork(self) -> None:
        """Forget handles inherited from the parent process (do not close them)."""
        ...
