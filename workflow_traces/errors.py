"""The exceptions workflow-traces raises.

Hierarchy::

    TraceError                      base of everything raised here
    ├── ConfigError (ValueError)    a setting, handler key or argument is invalid
    │   └── UnsafeRunIdError        a run_id that could leave its log folder
    ├── SinkError                   one or more sinks failed to write (fail_silently=False)
    ├── TraceClosedError (RuntimeError)  a record was logged after close()
    └── RunNotFoundError (KeyError) the store holds no record of that run

A log call never raises into user code, except where ``fail_silently=False`` asks for it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
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
