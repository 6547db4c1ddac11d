"""The fan-out: one record queued on every sink whose level admits it.

Every way in (trace calls, ``MultiHandler.emit``, scoped traces, the adapters) reaches
:func:`offer_all` through ``MultiHandler.offer``, but for the one copy inlined in the caller's hot
path (``core.trace._log_call``; ``tests/core/test_fan_out.py`` checks that the two agree).
"""

from __future__ import annotations

import contextlib
from typing import Any

from workflow_traces.core.record import F_SIZE, RecordValues
from workflow_traces.errors import TraceClosedError

__all__ = ["BIG", "Tap", "Target", "offer_after", "offer_all", "target"]

#: Records at least this big (approximate encoded bytes) count towards a sink's byte budget
#: (``wake_bytes``), so a run of huge messages wakes the worker before memory runs away; they
#: always take ``Channel.offer``.
BIG = 64 * 1024


class Tap:
    """A target that is not a Channel (an in-memory tap, a closed handler's stand-in): it
    always takes the ``offer`` path of :func:`offer_all`."""

    _dq: tuple[()] = ()
    wake_records = 0

    def offer(self, rec: RecordValues) -> None:
        raise NotImplementedError

    def offer_nowait(self, rec: RecordValues) -> bool:
        self.offer(rec)
        return True


#: A sink as its owners hold it: (level, its buffer, the Channel or Tap). The buffer is held
#: beside its channel because reading ``ch._dq`` for every record and sink cost the caller
#: about a fifth of each sink's share; a Channel keeps the same deque for its whole life (a
#: forked child clears it in place).
Target = tuple[int, Any, Any]


def target(level: int, ch: Any) -> Target:
    """``ch`` (a Channel or Tap) as a target of its owners' loops."""
    return (level, ch._dq, ch)


def offer_all(
    targets: tuple[Target, ...], rec: RecordValues, levelno: int, full: list[Any] | None = None
) -> None:
    """The fan-out: queue ``rec`` on every target whose level admits ``levelno``. Every way in
    comes here (through ``MultiHandler.offer``), but for the one copy inlined in the hot path
    (``core.trace._log_call``).

    ``Channel.offer``'s common case is inlined, one function call for all the sinks instead of
    one per sink: while a buffer holds fewer than its channel's ``wake_records`` records, a
    small record is appended to it directly (nothing to wake, no room to check); otherwise
    ``offer`` decides (wake the worker, apply the overflow policy, refuse after close).

    With ``full`` (a list), nothing blocks: a sink whose buffer is full under the "block"
    policy is appended to ``full`` instead (``offer_nowait``), for the caller to wait on it
    elsewhere (the async calls wait off the event loop).

    A sink closed on its own raises TraceClosedError: the sinks after it still take ``rec``
    (see :func:`offer_after`), then the error reaches the caller."""
    try:
        if full is None and rec[F_SIZE] < BIG:
            for lvl, dq, ch in targets:
                if levelno >= lvl:
                    if len(dq) < ch.wake_records:
                        dq.append(rec)
                    else:
                        ch.offer(rec)
        elif full is None:
            for lvl, _, ch in targets:
                if levelno >= lvl:
                    ch.offer(rec)
        else:
            for lvl, _, ch in targets:
                if levelno >= lvl and not ch.offer_nowait(rec):
                    full.append(ch)
    except TraceClosedError:
        offer_after(targets, ch, rec, levelno, full)
        raise


def offer_after(
    targets: tuple[Target, ...],
    refused_by: Any,
    rec: RecordValues,
    levelno: int,
    full: list[Any] | None = None,
) -> None:
    """The rest of a fan-out that ``refused_by`` (a closed sink) interrupted: ``rec`` goes to
    the targets after it. Later refusals are not raised again: the caller hears of one."""
    sinks = [t[2] for t in targets]
    if refused_by in sinks:  # (the targets may have been remade since)
        with contextlib.suppress(TraceClosedError):
            offer_all(targets[sinks.index(refused_by) + 1 :], rec, levelno, full)
