"""What a sink's worker does to each batch before the sink encodes it: sampling, rate limiting,
then redaction (see ``sample`` and ``redact``).

The channel's worker calls its :class:`RecordProcess` once per batch it takes, before the batch
goes to the exporter or to its Delivery (and so before the spool on disk): the caller's thread
does none of this, and each sink does it once per record it exports. Records left out are
counted in the sink's health as ``sampled`` or ``limited``.

By default every sink redacts with the default keys and patterns (:func:`default_process`);
configured sinks get theirs from their ``redact*``, ``sample`` and ``max_records_per_second``
keys (``exporters.config.SinkConfig.record_process``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from workflow_traces.core.record import RecordValues
from workflow_traces.pipeline.redact import (
    DEFAULT_REDACT_KEYS,
    DEFAULT_REDACT_PATTERNS,
    Redactor,
    redactor,
)
from workflow_traces.pipeline.sample import RateLimiter, Sampler

if TYPE_CHECKING:
    from workflow_traces.pipeline.health import SinkCounters

__all__ = ["RecordProcess", "default_process", "record_process"]


class RecordProcess:
    """One sink's step before encoding. Holds the rate limiter's state: one per sink."""

    def __init__(
        self,
        redactor: Redactor | None = None,
        sampler: Sampler | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.redactor = redactor
        self.sampler = sampler
        self.limiter = limiter

    def __call__(self, batch: list[RecordValues], counters: SinkCounters) -> list[RecordValues]:
        """The records of ``batch`` to export, redacted; those left out are counted. A failure
        here fails the batch (counted, reported): no record goes out unredacted."""
        try:
            sampled = limited = 0
            if self.sampler is not None or self.limiter is not None:
                kept: list[RecordValues] = []
                sampler, limiter = self.sampler, self.limiter
                for rec in batch:
                    if sampler is not None and not sampler.keeps(rec):
                        sampled += 1
                    elif limiter is not None and not limiter.keeps(rec):
                        limited += 1
                    else:
                        kept.append(rec)
                if sampled or limited:
                    counters.left_out(sampled, limited)
                    batch = kept
            if self.redactor is not None and batch:
                batch = self.redactor.batch(batch)
        except Exception as exc:
            counters.fail(exc, len(batch))
            return []
        return batch


def record_process(
    *,
    redact: bool = True,
    redact_keys: Sequence[str] | None = None,
    redact_patterns: Sequence[str] | None = None,
    sample: Mapping[str, float] | None = None,
    max_records_per_second: float | None = None,
) -> RecordProcess | None:
    """A sink's step; None when it has nothing to do. ``redact_keys``/``redact_patterns``:
    None takes the defaults, a list replaces them."""
    red = None
    if redact:
        keys = DEFAULT_REDACT_KEYS if redact_keys is None else tuple(redact_keys)
        patterns = DEFAULT_REDACT_PATTERNS if redact_patterns is None else tuple(redact_patterns)
        if keys or patterns:
            red = redactor(keys, patterns)
    sampler = Sampler(sample) if sample and any(r < 1.0 for r in sample.values()) else None
    limiter = None if max_records_per_second is None else RateLimiter(max_records_per_second)
    if red is None and sampler is None and limiter is None:
        return None
    return RecordProcess(red, sampler, limiter)


@lru_cache(maxsize=1)
def default_process() -> RecordProcess:
    """The default step: redaction with the default keys and patterns (stateless, shared)."""
    return RecordProcess(redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS))
