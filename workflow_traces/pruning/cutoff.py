"""Points in time as users write them: an age (``30d``, ``12h``) or a date (``2026-11-01``)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

__all__ = ["parse_age", "parse_when"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)


def parse_age(text: str, field: str = "--older-than") -> float:
    """Seconds in an age such as ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``. Raises ValueError
    naming ``field``, the value and what was expected."""
    match = _AGE.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{field}: expected an age such as 30d, 12h, 90m, 45s or 2w, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_when(text: str, field: str = "--since", now: float | None = None) -> int:
    """A point in time as nanoseconds since the epoch: an age (``7d``: that long before now) or
    an ISO date or date-time (``2026-11-01``, ``2026-11-01T12:00``; UTC unless it names its
    offset). Raises ValueError naming ``field``."""
    if _AGE.fullmatch(str(text)):
        seconds = parse_age(text, field)
        return max(-(2**63), int(((time.time() if now is None else now) - seconds) * 1e9))
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(
            f"{field}: expected an age such as 7d or an ISO date such as 2026-11-01, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Nanoseconds fit SQLite's 64-bit integers until 2262: clamp what lies beyond.
    return max(-(2**63), min(2**63 - 1, int(moment.timestamp() * 1_000_000) * 1000))
