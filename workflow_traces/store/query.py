"""What a filtered read asks for: ``Filters``, checked once, and the one way to test a record.

Every store turns the same ``Filters`` into its own query (SQL, an Elasticsearch bool query, a
test per line of a file); ``Filters.matches`` is that meaning in Python, used where a store
filters records itself (``follow``, the file store) and as the reference in tests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from workflow_traces.core.record import LEVELS, Record, level_number
from workflow_traces.errors import ConfigError

__all__ = ["KINDS", "Filters", "parse_since"]

#: The values ``kind=`` takes.
KINDS = ("log", "event")
_SINCE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(text: str, now_ns: int | None = None) -> int:
    """``10m``, ``90s``, ``2h``, ``1d`` (before now) or an ISO time, as nanoseconds since the
    epoch. A bad value is one ConfigError naming ``since``."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    match = _SINCE.fullmatch(text)
    if match:
        return now_ns - int(float(match.group(1)) * _UNITS[match.group(2)] * 1e9)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"since: expected a span before now (10m, 90s, 2h, 1d) or an ISO time, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a time without zone is local time, as a user types it
    return int(when.timestamp() * 1e9)


def _since_ns(since: int | float | datetime | timedelta | str | None) -> int | None:
    if since is None:
        return None
    if isinstance(since, str):
        return parse_since(since)
    if isinstance(since, timedelta):
        return time.time_ns() - int(since.total_seconds() * 1e9)
    if isinstance(since, datetime):
        if since.tzinfo is None:
            since = since.astimezone()
        return int(since.timestamp() * 1e9)
    if isinstance(since, int | float) and not isinstance(since, bool):
        return int(since * 1e9)  # seconds since the epoch, as time.time() gives
    raise ConfigError(
        f"since: expected a datetime, a timedelta, seconds since the epoch or a span like "
        f"'10m', got {since!r}"
    )


@dataclass(frozen=True)
class Filters:
    """A filtered read: each field None means "any".

    ``levelno``: that level and above. ``job``/``stage``: names, exactly. ``text``: a substring
    of the message, the exception's type or its message (case-sensitive, as ``grep``).
    ``since_ns``: records made at or after. ``kind``: "log" or "event".
    """

    levelno: int | None = None
    job: str | None = None
    stage: str | None = None
    text: str | None = None
    since_ns: int | None = None
    kind: str | None = None

    @classmethod
    def make(
        cls,
        level: str | int | None = None,
        job: str | None = None,
        stage: str | None = None,
        text: str | None = None,
        since: int | float | datetime | timedelta | str | None = None,
        kind: str | None = None,
    ) -> Filters:
        """Filters from what a caller gives, each value checked with one clear error."""
        levelno = None
        if level is not None:
            try:
                levelno = level_number(level)
            except (ValueError, TypeError, KeyError):
                raise ConfigError(
                    f"level: expected one of {', '.join(LEVELS)} or a number, got {level!r}"
                ) from None
        if kind is not None and kind not in KINDS:
            raise ConfigError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        for name, value in (("job", job), ("stage", stage), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name}: expected text, got {value!r}")
        return cls(levelno, job or None, stage or None, text or None, _since_ns(since), kind)

    @property
    def empty(self) -> bool:
        return self == _NONE

    def matches(self, rec: Record) -> bool:
        """Whether ``rec`` passes every filter."""
        if self.levelno is not None and rec.levelno < self.levelno:
            return False
        if self.job is not None and rec.job_name != self.job:
            return False
        if self.stage is not None and rec.stage_name != self.stage:
            return False
        if self.since_ns is not None and rec.time_ns < self.since_ns:
            return False
        if self.kind is not None and rec.kind != self.kind:
            return False
        if self.text is not None:
            t = self.text
            return (
                t in rec.message
                or (rec.exc_type is not None and t in rec.exc_type)
                or (rec.exc_message is not None and t in rec.exc_message)
            )
        return True


_NONE = Filters()
