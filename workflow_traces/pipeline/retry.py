"""Retry rules. :class:`RetryPolicy` is a channel's default (local sinks: two quick retries);
:class:`NetworkRetryPolicy` is the network sinks', after OpenTelemetry's OTLP HTTP exporter:
retry only what can succeed later, with exponential backoff and full jitter, honouring
``Retry-After``.

Exporters classify their failures by raising :class:`RetryableError` (connection errors,
timeouts, 408, 429, 5xx) or :class:`PermanentError` (other 4xx: reported, never retried);
:class:`PayloadTooLargeError` (413) makes the channel split the batch in halves. Anything else
they raise counts as retryable. The three live in ``workflow_traces.errors`` (the TraceError
tree) and are re-exported here for the pipeline's own imports.

A :class:`NetworkRetryPolicy` also tells the channel to hold records through an outage: once a
batch has used up its retries, a circuit breaker opens and the batch waits (in memory, or on disk
under ``spool_dir``) while the service is probed now and then (see ``delivery``).
"""

from __future__ import annotations

import random

from workflow_traces.errors import PayloadTooLargeError, PermanentError, RetryableError

__all__ = [
    "DEFAULT_SPOOL_MAX_BYTES",
    "RETRYABLE_STATUS",
    "NetworkRetryPolicy",
    "PayloadTooLargeError",
    "PermanentError",
    "RetryPolicy",
    "RetryableError",
    "parse_retry_after",
]

#: Default bound on a sink's spool folder.
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024

#: HTTP statuses worth retrying.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RetryPolicy:
    """When to try a failed batch again. The default suits local sinks: two quick retries,
    then the batch is counted as failed. Network sinks use :class:`NetworkRetryPolicy`."""

    #: Whether a batch still failing after ``max_retries`` waits for the service (circuit
    #: breaker, see ``delivery``) instead of being given up.
    holds_on_outage = False
    #: Folder where a network sink keeps records it cannot send now; None = memory only.
    spool_dir: str | None = None
    spool_max_bytes: int = 0

    def __init__(self, max_retries: int = 2, base_delay: float = 0.05, max_delay: float = 1.0):
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay

    def delay(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up (at once for
        a PermanentError: sending again cannot help)."""
        if attempt >= self.max_retries or isinstance(exc, PermanentError):
            return None
        return float(min(self.max_delay, self.base_delay * (2**attempt)))

    def retryable(self, exc: BaseException) -> bool:
        """Whether sending again may succeed (False: the records are failed at once)."""
        return True

    def splits(self, exc: BaseException) -> bool:
        """Whether ``exc`` asks for the batch to be split in halves (HTTP 413)."""
        return False

    def probe_delay(self, exc: BaseException, probes: int) -> float:
        """Seconds between probes of a service whose circuit breaker is open."""
        return self.max_delay


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; None if absent or a date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class NetworkRetryPolicy(RetryPolicy):
    """Exponential backoff with full jitter, capped; ``Retry-After`` wins when it is longer.

    Records are never given up because a service is merely down: after ``max_retries`` the
    channel opens its circuit breaker and probes the service every :meth:`probe_delay` seconds.
    With ``spool_dir`` the waiting records go to disk and survive a restart of the process.
    """

    holds_on_outage = True

    def __init__(
        self,
        max_retries: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        *,
        spool_dir: str | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
    ):
        super().__init__(max_retries, base_delay, max_delay)
        self.spool_dir = spool_dir
        self.spool_max_bytes = spool_max_bytes

    def retryable(self, exc: BaseException) -> bool:
        return not isinstance(exc, PermanentError)

    def splits(self, exc: BaseException) -> bool:
        return isinstance(exc, PayloadTooLargeError)

    def probe_delay(self, exc: BaseException, probes: int) -> float:
        """Seconds between probes of a service whose circuit is open: doubling from twice the
        base delay up to ``max_delay``, jittered, and never shorter than ``Retry-After``."""
        backoff = min(self.max_delay, self.base_delay * 2 * (2 ** min(probes, 30)))
        wait = random.uniform(backoff / 2, backoff)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), self.max_delay))
        return wait

    def delay(self, exc: BaseException, attempt: int) -> float | None:
        if isinstance(exc, PermanentError) or attempt >= self.max_retries:
            return None
        backoff = min(self.max_delay, self.base_delay * (2**attempt))
        wait = random.uniform(0, backoff)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), self.max_delay))
        return wait
