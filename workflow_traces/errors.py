"""The exceptions workflow-traces raises, and the ones an exporter raises to say how a batch
failed.

Hierarchy::

    TraceError                      base of everything raised here
    ├── ConfigError (ValueError)    a setting, handler key or argument is invalid
    │   └── UnsafeRunIdError        a run_id that could leave its log folder
    ├── SinkError                   one or more sinks failed to write (fail_silently=False)
    ├── TraceClosedError (RuntimeError)  a record was logged after close()
    ├── RunNotFoundError (KeyError) the store holds no record of that run
    └── ExportError                 an exporter could not write a batch (seen in
        │                           SinkError.failures and health().last_error)
        ├── RetryableError          it may work later: retried with backoff, then held
        └── PermanentError          sending again cannot help: the records count as failed
            └── PayloadTooLargeError  the request was too large: the batch is split

A log call never raises into user code, except where ``fail_silently=False`` asks for it.

Exporters (see ``workflow_traces.exporters.Exporter``) raise the ``ExportError`` kinds from
``export``; anything else they raise counts as retryable.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ExportError",
    "PayloadTooLargeError",
    "PermanentError",
    "RetryableError",
    "RunNotFoundError",
    "SinkError",
    "TraceClosedError",
    "TraceError",
    "UnsafeRunIdError",
]


class TraceError(Exception):
    """Base class of the errors raised by workflow-traces."""


class ConfigError(TraceError, ValueError):
    """A configuration value is invalid; the message names the field, the value and what was
    expected."""


class UnsafeRunIdError(ConfigError):
    """A run_id cannot be turned into a folder name that stays inside the log folder."""


class SinkError(TraceError):
    """One or more sinks failed. ``failures`` maps each sink's name to its last error."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = dict(failures)
        parts = [f"{name}: {type(exc).__name__}: {exc}" for name, exc in self.failures.items()]
        super().__init__("sink failed: " + "; ".join(parts))


class TraceClosedError(TraceError, RuntimeError):
    """A record was logged after the trace or handler was closed."""


class RunNotFoundError(TraceError, KeyError):
    """The store holds no record of the requested run."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


class ExportError(TraceError):
    """An exporter could not write a batch. Raise one of the subclasses to say whether sending
    again can help; the message must hold no secret (no URL query, no header)."""


class RetryableError(ExportError):
    """A failure that may go away (a connection error, a timeout, 408, 429, 5xx): the batch is
    sent again with backoff; after the retries, the circuit breaker holds it (and the spool, if
    configured, keeps it on disk) until the destination answers. ``retry_after`` is the
    destination's ``Retry-After`` in seconds, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ExportError):
    """A failure that sending again cannot fix (400, 401, 403, a record the destination
    refuses): reported, not retried; the batch's records count as failed."""


class PayloadTooLargeError(PermanentError):
    """The request was too large (413): the batch is split in halves and each half sent on its
    own; a single record that is still too large counts as failed."""
