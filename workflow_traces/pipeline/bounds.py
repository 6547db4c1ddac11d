"""A sink buffer's two bounds: ``queue_size`` records, and about ``queue_bytes`` bytes of memory.

A queued record counts as its ``size`` estimate (the message's length plus 256) plus
:data:`FOOTPRINT`, which together come close to what it takes in memory. The caller's thread
never adds sizes up: records of ``BIG`` bytes and more, which take the channel's slow path
anyway, are counted one by one as they are queued; the smaller ones, the common case, are
counted by the worker, which turns the byte bound into a number of records from the sizes of
the records it takes (:meth:`BufferBounds.measure`). So a run of records much bigger than the
ones before can overshoot ``queue_bytes`` by at most ``BIG`` bytes a record, until the next
batch is taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow_traces.core.record import RecordValues
from workflow_traces.pipeline.batching import size_of
from workflow_traces.pipeline.fanout import BIG

__all__ = [
    "DEFAULT_QUEUE_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "FOOTPRINT",
    "NETWORK_QUEUE_BYTES",
    "SAMPLE_EVERY",
    "BufferBounds",
]

#: Records a sink's buffer holds at most, by default (a sink's ``queue_size``).
DEFAULT_QUEUE_SIZE = 200_000
#: About how many bytes of memory a sink's buffer holds at most, by default (``queue_bytes``).
DEFAULT_QUEUE_BYTES = 52 << 20
#: The same for a network sink: its buffer fills whenever its service is down, and stays full.
NETWORK_QUEUE_BYTES = 28 << 20
#: What a queued record costs in memory beyond its ``size`` estimate: the 30-value tuple (288
#: bytes), its clock, id, thread and size numbers and the deque's slot. Measured with
#: tracemalloc for short trace.info records: about 520 bytes each, against a ``size`` of 270
#: to 290.
FOOTPRINT = 224
#: With no big record queued, a batch's mean record size is measured on every this many.
SAMPLE_EVERY = 8
#: A short message's cost, until the worker has measured.
_FIRST_COST = 256 + 32 + FOOTPRINT


class BufferBounds:
    """The bounds of one buffer, and what they allow now. Not thread-safe: the channel calls
    it under its ``_space`` lock."""

    __slots__ = ("avg_cost", "big_bytes", "queue_bytes", "queue_size")

    def __init__(self, queue_size: int, queue_bytes: int) -> None:
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        #: The cost of a record below BIG: the mean of the last batch the worker took.
        self.avg_cost = _FIRST_COST
        #: The cost of the big records queued now.
        self.big_bytes = 0

    def capacity(self) -> int:
        """Records the buffer may hold now: ``queue_size``, or fewer as ``queue_bytes`` allows
        beside the big records queued (at least one)."""
        room = max(0, self.queue_bytes - self.big_bytes) // self.avg_cost
        return max(1, min(self.queue_size, room))

    def admits_big(self, size: int, queued: int) -> bool:
        """Whether a record of ``size`` (>= BIG) fits beside the ``queued`` ones. A record
        bigger than the whole bound is taken into an empty buffer, never refused for good."""
        return not queued or self.big_bytes + size + FOOTPRINT <= self.queue_bytes

    def add_big(self, size: int) -> None:
        self.big_bytes += size + FOOTPRINT

    def sizes_to_measure(self, batch: Sequence[RecordValues]) -> list[int]:
        """The sizes :meth:`measure` takes for ``batch``, just taken. While no big record is
        counted as queued, the batch holds none that was (a caller counts one before queueing
        it) and the sizes of every ``SAMPLE_EVERY``-th record give the mean: that much less
        work. Read without the lock: between two of the worker's measures, ``big_bytes`` only
        grows."""
        return list(map(size_of, batch if self.big_bytes else batch[::SAMPLE_EVERY]))

    def measure(self, sizes: Sequence[int]) -> None:
        """The worker took records of these sizes: update the big records' total, and the cost
        of the others from their mean."""
        if not sizes:
            return
        big = [s for s in sizes if s >= BIG] if max(sizes) >= BIG else []
        if big:
            self.big_bytes = max(0, self.big_bytes - sum(big) - FOOTPRINT * len(big))
        small = len(sizes) - len(big)
        if small:
            self.avg_cost = (sum(sizes) - sum(big)) // small + FOOTPRINT

    def reset(self) -> None:
        """The buffer was emptied (a forked child)."""
        self.big_bytes = 0
