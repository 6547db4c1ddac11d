"""What sits in a sink's buffer besides records, and how its worker takes a batch from it."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from itertools import accumulate, repeat
from operator import call, itemgetter
from typing import Any

from workflow_traces.core.record import F_SIZE, RecordValues

__all__ = ["NO_LIMIT", "Marker", "Waiter", "take_batch"]

#: No record is estimated smaller than this (see Trace._record), which bounds a batch by bytes.
MIN_SIZE = 256
NO_LIMIT = 1 << 62
size_of = itemgetter(F_SIZE)


class Waiter:
    """A caller blocked on a full buffer, holding its record until the worker places it."""

    __slots__ = ("placed", "ready", "rec")

    def __init__(self, rec: RecordValues) -> None:
        self.rec = rec
        self.placed = False
        self.ready = threading.Event()


class Marker:
    """Put in the buffer by flush(); set once everything before it has been handled."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


def take_batch(
    dq: deque[Any], markers: int, batch_records: int, batch_bytes: int
) -> tuple[list[RecordValues], Marker | None]:
    """The next batch from ``dq`` (at most ``batch_records`` records and about ``batch_bytes``
    bytes), and the flush marker that ends it, if one does; ``markers``: how many markers the
    buffer may hold (0: do not look for one).

    Pops a whole batch in one C loop (``map`` calling ``popleft``; a comprehension cost a
    third more) rather than one record at a time: the worker holds the GIL for all of its
    Python work, and with several sinks that work adds up. What a cut by
    bytes or a marker leaves over goes back to the front, in order (only the worker takes from
    the front; callers append at the back)."""
    popleft = dq.popleft
    n = min(len(dq), batch_records, batch_bytes // MIN_SIZE + 1)
    items: list[Any] = list(map(call, repeat(popleft, n)))
    cut = n
    marker: Marker | None = None
    if markers:  # read after popping: a marker counts itself before it is queued
        types = list(map(type, items))
        if Marker in types:
            cut = types.index(Marker)
            marker = items[cut]
    if batch_bytes < NO_LIMIT:
        sizes = list(accumulate(map(size_of, items[:cut])))
        k = bisect_left(sizes, batch_bytes) + 1  # the record that reaches the limit
        if k < cut:
            cut, marker = k, None
    rest = items[cut + 1 :] if marker is not None else items[cut:]
    if rest:
        dq.extendleft(reversed(rest))
    return items[:cut], marker
