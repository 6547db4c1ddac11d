"""What every test folder uses to watch our own diagnostics (the ``workflow_traces`` logger).

A module with a name of its own, not ``conftest``, so test modules of any folder can import it
whichever folders pytest runs together (tests/conftest.py puts this folder on sys.path).
"""

from __future__ import annotations

import logging

__all__ = ["Reports"]


class Reports(logging.Handler):
    """Collects what a logger says."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    @property
    def text(self) -> str:
        """Every message, with the traceback of those that carry one."""
        out = []
        for r in self.records:
            out.append(r.getMessage())
            if r.exc_info:
                out.append(logging.Formatter().formatException(r.exc_info))
        return "\n".join(out)
