"""Retry rules for network sinks, after OpenTelemetry's OTLP HTTP exporter: retry only what can
succeed later, with exponential backoff and full jitter, honouring ``Retry-After``.

Exporters classify their failures by raising :class:`RetryableError` (connection errors,
timeouts, 408, 429, 5xx) or :class:`PermanentError` (other 4xx: reported, never retried).
Anything else they raise counts as retryable.
"""

from __future__ import annotations

import random

from ._channel import RetryPolicy

__all__ = ["RETRYABLE_STATUS", "NetworkRetryPolicy", "PermanentError", "RetryableError"]

#: HTTP statuses worth retrying.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RetryableError(Exception):
    """A failure that may go away: the batch is sent again later. ``retry_after`` is the
    server's ``Retry-After`` in seconds, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure that sending again cannot fix (400, 401, 403, ...): reported, not retried."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; None if absent or a date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class NetworkRetryPolicy(RetryPolicy):
    """Exponential backoff with full jitter, capped; ``Retry-After`` wins when it is longer."""

    def __init__(self, max_retries: int = 3, base_delay: float = 0.5, max_delay: float = 30.0):
        super().__init__(max_retries, base_delay, max_delay)

    def delay(self, exc: BaseException, attempt: int) -> float | None:
        if isinstance(exc, PermanentError) or attempt >= self.max_retries:
            return None
        backoff = min(self.max_delay, self.base_delay * (2**attempt))
        wait = random.uniform(0, backoff)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), self.max_delay))
        return wait
