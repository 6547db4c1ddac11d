"""A run's status from its lifecycle events: the rules the summaries and the trees share."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["END_EVENTS", "jobs_status"]

#: The events that end a scope.
END_EVENTS = ("succeeded", "failed", "skipped", "cancelled")


def jobs_status(statuses: Iterable[str | None]) -> str | None:
    """One status from several (a run's jobs): unfinished, failed, cancelled, all skipped,
    else succeeded; None for none."""
    seen = [s for s in statuses if s is not None]
    if not seen:
        return None
    for status in ("unfinished", "failed", "cancelled"):
        if status in seen:
            return status
    return "skipped" if all(s == "skipped" for s in seen) else "succeeded"
