"""The public exporter interface: what a sink's destination implements (after OpenTelemetry's
``LogExporter``: ``export``, ``force_flush``, ``shutdown``).

An exporter owns no thread and no queue. The pipeline gives each sink:

- **one worker thread** (its ``Channel``): ``export``, ``flush`` and ``shutdown`` are called on
  that one thread, one call at a time, so an exporter needs no lock of its own (``after_fork``
  runs in a forked child, before the child's worker starts). The caller's thread never reaches
  the exporter: it only appends a record to the sink's bounded buffer.
- **batches**: the worker hands ``export`` up to ``buffer_size`` records at a time (and at least
  every ``flush_interval`` seconds), in the order they were logged.
- **delivery**: what ``export`` raises decides what happens to the batch (see ``export``).
  Retries with jittered exponential backoff, the circuit breaker that holds records through an
  outage, and the on-disk spool (``spool_dir``) all wrap the exporter: they are the pipeline's,
  turned on by the sink's config (``NetworkSinkConfig``), and an exporter never sleeps or
  retries by itself.
- **counts**: records an export wrote count as ``written`` in ``health()``, records refused for
  good as ``failed``; the error goes to ``health().last_error`` and, with
  ``fail_silently=False``, to the next ``flush()``/``close()`` as ``SinkError.failures``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workflow_traces.core.record import Record

__all__ = ["ExportResult", "Exporter", "after_fork", "flush", "shutdown"]


@dataclass
class ExportResult:
    """What ``export`` returns when only part of a batch went through.

    ``retry`` holds records worth sending again later; ``rejected`` counts records the
    destination refused for good (counted as failed); ``error`` is the cause, for the health
    summary.
    """

    retry: list[Record] = field(default_factory=list)
    rejected: int = 0
    error: BaseException | None = None


class Exporter(ABC):
    """Writes batches of records to one destination. Subclass it and implement ``export``;
    ``flush``, ``shutdown`` and ``after_fork`` have do-nothing defaults.

    The exceptions ``export`` raises (from ``workflow_traces.errors``) tell the pipeline what
    to do with the batch:

    - :class:`~workflow_traces.errors.RetryableError` (and any exception not listed here): the
      destination may take it later. The batch is sent again after a jittered backoff; once the
      retries are used up, sinks configured as network sinks hold it (circuit breaker, spool)
      until the destination answers, others count it as failed.
    - :class:`~workflow_traces.errors.PermanentError`: sending again cannot help. The records
      count as failed and the error is reported; the batch is not retried.
    - :class:`~workflow_traces.errors.PayloadTooLargeError`: the request was too large. A network
      sink splits the batch in halves and exports each half on its own; a single record still
      too large counts as failed. A local sink treats it as a PermanentError.

    An exporter that wrote part of a batch returns an :class:`ExportResult` instead of raising.
    """

    #: A short name for reports and ``health()``, such as ``"file:./logs"``. Never a secret.
    name: str = "exporter"

    #: Advanced (built-in sinks): batches hold plain tuples of a record's values, indexed with
    #: the ``F_*`` positions of ``workflow_traces.core.record``, instead of Records.
    takes_values: bool = False

    #: Advanced: a backlog is handed over up to this many batches at a time (the SQLite sink
    #: writes them in one transaction).
    group: int = 1

    @abstractmethod
    def export(self, batch: Sequence[Record]) -> ExportResult | None:
        """Write ``batch``. Return None when all of it was written, an ExportResult when only
        part was, or raise (see the class) when none was."""

    def flush(self, timeout: float | None = None) -> bool:
        """Write out whatever the exporter keeps in buffers of its own. Called on the worker
        after every batch queued before a ``flush()`` or ``close()`` was exported. Return False
        when that could not be done in ``timeout`` seconds."""
        return True

    def shutdown(self) -> None:
        """Release what the exporter holds (files, connections). Called once, on the worker,
        after the last export; nothing is exported after it."""
        return None

    def after_fork(self) -> None:
        """In a forked child: forget handles inherited from the parent (do not close them, they
        are the parent's). The child's worker then exports the child's records."""
        return None


# -- how the pipeline calls an exporter -------------------------------------------------------
# The pipeline needs only ``name`` and ``export``; the rest is optional, so an object that does
# not subclass Exporter works too. ``close`` is accepted as the older name of ``shutdown``.


def flush(exporter: Any, timeout: float | None = None) -> bool:
    """Call ``exporter.flush(timeout)`` if it has one."""
    method = getattr(exporter, "flush", None)
    return True if method is None else method(timeout) is not False


def shutdown(exporter: Any) -> None:
    """Call ``exporter.shutdown()`` (or, for an exporter that names it so, ``close()``)."""
    method = getattr(exporter, "shutdown", None) or getattr(exporter, "close", None)
    if method is not None:
        method()


def after_fork(exporter: Any) -> None:
    """Call ``exporter.after_fork()`` if it has one."""
    method = getattr(exporter, "after_fork", None)
    if method is not None:
        method()
