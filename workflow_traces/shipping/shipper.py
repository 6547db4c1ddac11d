"""``ship``: send the runs of a local trace (a SQLite database or a file-sink folder) to any
sink, exactly once per destination.

Each destination is built from its config through the sink registry, like any handler, and the
records go through its ``Channel``: the sink's retries, circuit breaker, 413 splitting and
service limits apply. The records keep their ``record_id``. They go in batches: a batch is
queued, flushed and counted as written before its positions are stored in the checkpoint (see
``checkpoint``), so a ship killed at any point sends again at most the batch it was sending,
with the same ids.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow_traces.errors import ConfigError, TraceError
from workflow_traces.pruning.cutoff import parse_when
from workflow_traces.shipping.checkpoint import Checkpoint, default_path, remember
from workflow_traces.shipping.progress import Progress
from workflow_traces.shipping.source import Problem, Source, open_source

__all__ = ["ShipError", "ShipResult", "destinations", "ship"]

#: Records a batch holds by default: what a killed ship may send twice.
DEFAULT_BATCH = 5000


class ShipError(TraceError):
    """The destination did not take a batch; what was delivered before it is checkpointed."""


@dataclass
class ShipResult:
    """What one ship to one destination did."""

    source: str
    destination: str
    #: Records delivered by this ship.
    sent: int = 0
    #: Runs those records belong to.
    runs: int = 0
    seconds: float = 0.0
    #: What could not be read from the source (skipped), each naming the file and line or
    #: the table and row.
    problems: list[Problem] = field(default_factory=list)
    #: Why the ship stopped before the end, if it did.
    error: str | None = None

    @property
    def skipped(self) -> int:
        return len(self.problems)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"shipped {self.sent:,} records of {self.runs:,} runs from {self.source} to "
            f"{self.destination} in {self.seconds:.1f}s ({rate:,.0f} records/s)"
        )
        if self.problems:
            text += f"; skipped {self.skipped:,} unreadable"
        if self.error:
            text += f"; stopped: {self.error}"
        return text


def destinations(
    to: str | Mapping[str, Any] | None = None, profile: str | None = None
) -> list[Any]:
    """The destination sink configs: ``to`` (a handler config like one entry of
    TRACE_HANDLERS, as a dict or JSON text), else the TRACE_* settings (of ``profile``)."""
    from workflow_traces.settings.config import validate_handler

    if to is not None:
        if isinstance(to, str):
            import json

            try:
                data = json.loads(to)
            except ValueError as exc:
                raise ConfigError(
                    f"--to: expected a handler config as JSON, such as "
                    f'{{"type": "sqlite", "path": "copy.db"}}, got {to!r} ({exc})'
                ) from None
        else:
            data = dict(to)
        if not isinstance(data, dict):
            raise ConfigError(f"--to: expected a JSON object, got {to!r}")
        try:
            return [validate_handler(data)]
        except ConfigError as exc:
            raise ConfigError(f"--to: {exc}") from None
    from workflow_traces.settings.effective import resolve
    from workflow_traces.settings.model import TraceSettings

    return list(resolve(TraceSettings.load(profile=profile), {}).handlers)


def destination_key(cfg: Any) -> str:
    """What names a destination in the checkpoint: its ``describe()`` (never a secret), a
    local store's path made absolute, and an index if it has one."""
    location = cfg.store_location()
    key = f"{cfg.type} {os.path.abspath(location)}" if location else str(cfg.describe())
    index = getattr(cfg, "index_name", None)
    return f"{key} index={index}" if isinstance(index, str) else key


class _Pacer:
    """Keeps the records queued to ``rate`` a second."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        self.start = clock()
        self.done = 0

    def chunk(self) -> int:
        return 1 << 30 if not self.rate else max(1, int(self.rate / 20))

    def wait(self, count: int) -> None:
        self.done += count
        if self.rate:
            ahead = self.done / self.rate - (self._clock() - self.start)
            if ahead > 0:
                self._sleep(ahead)


def ship(
    source: str | os.PathLike[str],
    to: str | Mapping[str, Any] | None = None,
    *,
    profile: str | None = None,
    runs: Iterable[str] = (),
    workflow: str | None = None,
    since: str | int | None = None,
    rate: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    state: str | os.PathLike[str] | None = None,
    progress: bool | None = False,
    timeout: float = 120.0,
) -> list[ShipResult]:
    """Send the runs in ``source`` (a SQLite database or a file-sink folder) to ``to`` (one
    handler config) or to the sinks of the TRACE_* settings (of ``profile``): one result per
    destination. Records already delivered to a destination are not sent again.

    ``runs``, ``workflow`` and ``since`` (an age such as ``7d``, an ISO date, or nanoseconds
    since the epoch: runs whose first record is at or after it) select runs; ``rate`` caps
    records per second; ``state`` is the checkpoint file (default beside the source);
    ``progress`` shows a progress bar on stderr (None: when stderr is a terminal).
    Raises ConfigError for a bad source, destination or argument."""
    if batch_size < 1:
        raise ConfigError(f"batch_size: must be > 0, got {batch_size!r}")
    if rate is not None and rate <= 0:
        raise ConfigError(f"rate: must be > 0 records/s, got {rate!r}")
    try:
        since_ns = parse_when(since) if isinstance(since, str) else since
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    configs = destinations(to, profile)
    src = open_source(source)
    try:
        where = Path(os.path.abspath(source))
        for cfg in configs:
            location = cfg.store_location()
            if location and os.path.abspath(location) == str(where):
                raise ConfigError(f"--to: the destination {cfg.describe()} is the source itself")
        selected = src.select(runs, workflow, since_ns)
        path = Path(state) if state is not None else default_path(where)
        with Checkpoint(path, str(where)) as checkpoint:
            return [
                _ship_one(src, cfg, checkpoint, selected, batch_size, rate, progress, timeout)
                for cfg in configs
            ]
    finally:
        src.close()


def _ship_one(
    src: Source,
    cfg: Any,
    checkpoint: Checkpoint,
    selected: list[str] | None,
    batch_size: int,
    rate: float | None,
    progress: bool | None,
    timeout: float,
) -> ShipResult:
    from workflow_traces.settings.factory import build_handler

    key = destination_key(cfg)
    result = ShipResult(str(src), str(cfg.describe()))
    positions = checkpoint.positions(key)
    marks = checkpoint.marks(key)
    # Rows pruned and their numbers reused: resume from the last position still proven.
    src.verify(positions, marks)
    handler: Any = build_handler(cfg, "workflow-traces-ship", None, {}, False)
    channel = handler.channel
    # A batch never holds more than the sink's buffer, which would drop the rest.
    size = max(1, min(batch_size, getattr(channel, "_capacity", batch_size) // 2))
    pacer = _Pacer(rate)
    if rate:
        size = min(size, max(1, int(rate)))
    first = len(src.problems)
    bar = Progress(lambda: src.pending(positions, selected), key, progress)
    started = time.monotonic()
    seen: set[str] = set()
    try:
        for records, moved, ids in src.batches(positions, selected, size):
            if records:
                _deliver(channel, records, pacer, timeout)
                seen.update(rec.run_id for rec in records)
                result.sent += len(records)
            positions.update(moved)
            for at, record_id in ids.items():
                remember(marks, at, moved[at], record_id)
            checkpoint.save()
            bar.update(len(records))
    except ShipError as exc:
        result.error = str(exc)
    finally:
        bar.close()
        result.runs = len(seen)
        result.problems = src.problems[first:]
        try:
            # After a refused batch, what the sink still holds is not waited for: it was not
            # checkpointed, and the next ship sends it again.
            handler.close(timeout if result.error is None else 1.0)
        except TraceError as exc:
            result.error = result.error or str(exc)
        result.seconds = time.monotonic() - started
    return result


def _deliver(channel: Any, records: Sequence[Any], pacer: _Pacer, timeout: float) -> None:
    """Queue ``records`` to the sink and wait until it wrote them all; ShipError if not."""
    before = channel.health()
    step = pacer.chunk()
    offer = channel.offer
    for start in range(0, len(records), step):
        part = records[start : start + step]
        for rec in part:
            offer(rec)
        pacer.wait(len(part))
    finished = channel.flush(timeout)
    after = channel.health()
    written = after.written - before.written
    if finished and written >= len(records):
        return
    lost = (after.failed - before.failed) + (after.dropped - before.dropped)
    why = after.last_error or ("it did not answer in time" if not finished else "unknown")
    raise ShipError(
        f"{channel.name} took {written} of a batch of {len(records)} records ({lost} failed): "
        f"{why}; ship again to resume from the last delivered batch"
    )
