"""Our own diagnostics: the ``workflow_traces`` logger, rate-limited.

Our handlers never take records from this logger (nor from the HTTP and cloud client libraries
we use), so a failing sink cannot feed its own failure reports back into itself.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["IGNORED_LOGGERS", "is_ignored", "logger", "report"]

logger = logging.getLogger("workflow_traces")

#: Logger name prefixes whose records our handlers never take, to rule out feedback loops.
IGNORED_LOGGERS: tuple[str, ...] = (
    "workflow_traces",
    "httpx",
    "httpcore",
    "urllib3",
    "elastic_transport",
    "elasticsearch",
    "botocore",
    "boto3",
    "hpack",
    "h2",
)

_ignored: dict[str, bool] = {}


def is_ignored(name: str) -> bool:
    """Whether records of the logger ``name`` must never reach our handlers (cached)."""
    ignored = _ignored.get(name)
    if ignored is None:
        ignored = name.startswith(IGNORED_LOGGERS)
        if len(_ignored) < 10_000:
            _ignored[name] = ignored
    return ignored


_INTERVAL = 10.0
_lock = threading.Lock()
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def report(key: str, message: str, level: int = logging.WARNING) -> None:
    """Log ``message`` unless the same ``key`` was reported in the last 10 seconds; the next
    report of that key says how many were held back."""
    now = time.monotonic()
    with _lock:
        last = _last.get(key)
        if last is not None and now - last < _INTERVAL:
            _suppressed[key] = _suppressed.get(key, 0) + 1
            return
        _last[key] = now
        held = _suppressed.pop(key, 0)
    if held:
        message = f"{message} ({held} similar reports suppressed)"
    logger.log(level, message)
