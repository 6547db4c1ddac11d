"""Sampling and rate limiting of noisy levels, per sink, on the sink's worker.

- :class:`Sampler`: keeps a given fraction of DEBUG and INFO log lines (``{"DEBUG": 0.01,
  "INFO": 0.5}``). The choice is made from the record's id, not from a random draw: the same
  record is kept or left out the same way by every sink with the same rate, and a run of
  records keeps its fraction evenly (the id's counter through a Fibonacci hash).
- :class:`RateLimiter`: at most ``max_records_per_second`` DEBUG and INFO log lines, by the
  records' own timestamps (a token bucket refilled at that rate, holding at most one second's
  worth), so a burst logged in one second is cut the same way however the worker batches it.

WARNING and above and lifecycle events are never left out, by either, and do not use up the
limiter's budget.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from workflow_traces.core.record import (
    F_KIND,
    F_LEVELNO,
    F_RECORD_ID,
    F_TIME_NS,
    LEVELS,
    RecordValues,
)
from workflow_traces.errors import ConfigError

__all__ = ["SAMPLED_LEVELS", "RateLimiter", "Sampler", "check_rates", "id_fraction"]

#: The levels a sink may sample; WARNING and above are always kept.
SAMPLED_LEVELS = ("DEBUG", "INFO")
_WARNING = LEVELS["WARNING"]
_INFO = LEVELS["INFO"]
_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / the golden ratio: consecutive ids spread evenly


def check_rates(rates: Mapping[Any, Any], field: str = "sample") -> dict[str, float]:
    """``rates`` with upper-case level names; ConfigError naming a bad level or rate."""
    checked: dict[str, float] = {}
    for level, rate in rates.items():
        name = str(level).upper()
        if name not in SAMPLED_LEVELS:
            raise ConfigError(
                f"{field}: expected DEBUG or INFO as levels (WARNING and above are never "
                f"sampled), not {level!r}"
            )
        ok = isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1
        if not ok:
            raise ConfigError(f"{field}: {name}: expected a fraction from 0 to 1, not {rate!r}")
        checked[name] = float(rate)
    return checked


def id_fraction(record_id: object) -> float:
    """Where a record id falls in [0, 1): the record is kept at rate r when this is below r.

    A record's id is the counter of its process (the caller's thread queues only the number)
    or a whole id ``<prefix>-<counter>``; ids of any other form are hashed."""
    if type(record_id) is int:
        n = record_id
    else:
        text = str(record_id)
        tail = text.rpartition("-")[2]
        n = int(tail) if tail.isdigit() else zlib.crc32(text.encode("utf-8", "replace"))
    return ((n * _GOLDEN) & _M64) / 2.0**64


class Sampler:
    """Decides, per record, whether a sampled level's record is kept."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        rates = check_rates(rates)
        self.rates = rates
        self._debug = rates.get("DEBUG", 1.0)
        self._info = rates.get("INFO", 1.0)

    def keeps(self, rec: RecordValues) -> bool:
        levelno = rec[F_LEVELNO]
        if levelno >= _WARNING or rec[F_KIND] != "log":
            return True
        rate = self._debug if levelno < _INFO else self._info
        if rate >= 1.0:
            return True
        return id_fraction(rec[F_RECORD_ID]) < rate


class RateLimiter:
    """At most ``per_second`` DEBUG/INFO log lines a second, by the records' timestamps. One
    per sink: it keeps its bucket between batches (only that sink's worker calls it)."""

    def __init__(self, per_second: float) -> None:
        if not (isinstance(per_second, int | float) and per_second > 0):
            raise ConfigError(f"max_records_per_second: expected a number > 0, got {per_second!r}")
        self.per_second = float(per_second)
        self._capacity = max(1.0, self.per_second)
        self._tokens = self._capacity
        self._last_ns: int | None = None

    def keeps(self, rec: RecordValues) -> bool:
        if rec[F_LEVELNO] >= _WARNING or rec[F_KIND] != "log":
            return True
        now = rec[F_TIME_NS]
        last = self._last_ns
        if last is None:
            self._last_ns = now
        elif now > last:
            self._tokens = min(self._capacity, self._tokens + (now - last) * self.per_second / 1e9)
            self._last_ns = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
