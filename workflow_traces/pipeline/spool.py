"""A sink's spool: records that cannot be sent now, kept on disk until the service is back.

Layout under ``spool_dir``::

    <sink>-<hash>/                     one folder per sink (from the sink's name, which holds
                                       no secret)
        <time_ns>-<pid>-<seq>.jsonl    a segment: one record a line; oldest segment sent first
        <segment>.sent                 how many lines of that segment were sent already

A process appends to one open segment at a time and holds an exclusive ``flock`` on it while it
does. Readers, in this process or another, only take a segment they can lock, so one segment is
never sent by two processes at once, and the segment of a process that was killed is free again
as soon as the kernel drops its lock. Each batch is written with one ``os.write``: a kill leaves
whole lines (a torn last line is skipped on reading). Data written survives the process, not a
crash of the machine (no fsync).

Delivery from the spool is at least once: a chunk that was sent just before a crash, before its
progress was recorded, is sent again. Records keep their ``record_id``, so the receiver can drop
the copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

import orjson

from workflow_traces.core.record import Record
from workflow_traces.diagnostics import report
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.encode import dumps, record_from_dict, record_to_dict

__all__ = ["Spool", "SpoolChunk", "spool_folder_name"]

#: A segment is closed and a new one started after this many records or bytes.
SEGMENT_RECORDS = 5000
SEGMENT_BYTES = 8 * 1024 * 1024
#: Seconds between looks at the folder for segments left by other processes.
RESCAN_INTERVAL = 30.0

_SUFFIX = ".jsonl"
_SENT = ".sent"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_FLAGS = getattr(os, "O_CLOEXEC", 0)


def spool_folder_name(sink_name: str) -> str:
    """The folder of one sink inside ``spool_dir``: readable, one path component, unique."""
    digest = hashlib.sha256(sink_name.encode("utf-8", "backslashreplace")).hexdigest()[:16]
    readable = _UNSAFE.sub("_", sink_name).strip("._")[:48] or "sink"
    return f"{readable}-{digest}"


class SpoolChunk(NamedTuple):
    """Records taken from the spool; ``end`` is the segment line to resume from once sent."""

    records: list[Record]
    end: int


class _Active:
    __slots__ = ("bytes", "fd", "lines", "name")

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.lines = 0
        self.bytes = 0


class _Claim:
    __slots__ = ("fd", "items", "name", "pos", "size")

    def __init__(self, fd: int, name: str, items: list[Record | None], pos: int, size: int):
        self.fd = fd
        self.name = name
        self.items = items
        self.pos = pos
        self.size = size


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    parts: list[bytes] = []
    offset = 0
    while True:
        part = os.pread(fd, 1 << 20, offset)
        if not part:
            return b"".join(parts)
        parts.append(part)
        offset += len(part)


class Spool:
    """One sink's spool folder. Used only by the sink's worker thread."""

    def __init__(self, root: str | os.PathLike[str], sink_name: str, max_bytes: int) -> None:
        self.dir = Path(root) / spool_folder_name(sink_name)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"spool_dir: cannot create folder {str(self.dir)!r}: {exc.strerror}"
            ) from None
        if not os.access(self.dir, os.W_OK | os.X_OK):
            raise ConfigError(f"spool_dir: folder {str(self.dir)!r} is not writable")
        self.sink_name = sink_name
        self.max_bytes = max_bytes
        #: Records this process put in the spool and has not sent yet (plus those of a segment
        #: it is sending); for the health summary.
        self.records = 0
        self._bytes = 0
        self._active: _Active | None = None
        self._claim: _Claim | None = None
        self._known: list[str] = []
        self._seq = 0
        self._last_ns = 0
        self._next_scan = 0.0
        self._scan()

    # -- looking at the folder ----------------------------------------------------------------
    def _scan(self) -> None:
        self._next_scan = time.monotonic() + RESCAN_INTERVAL
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        busy = {a.name for a in (self._active, self._claim) if a is not None}
        segments = sorted(n for n in names if n.endswith(_SUFFIX) and not n.startswith("."))
        total = 0
        for name in segments:
            with contextlib.suppress(OSError):
                total += (self.dir / name).stat().st_size
        self._bytes = total
        known = set(self._known)
        self._known.extend(n for n in segments if n not in known and n not in busy)
        self._known.sort()
        present = set(segments)
        for name in names:  # progress files whose segment is gone (a crash between the two)
            if name.endswith(_SENT) and name[: -len(_SENT)] not in present:
                with contextlib.suppress(OSError):
                    (self.dir / name).unlink()

    def has_backlog(self) -> bool:
        """Whether records wait in the spool (ours, or left by a process that is gone)."""
        if self._claim is not None or self._active is not None or self._known:
            return True
        if time.monotonic() >= self._next_scan:
            self._scan()
        return bool(self._known)

    # -- writing ------------------------------------------------------------------------------
    def _open_active(self) -> _Active:
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        self._seq += 1
        name = f"{now:020d}-{os.getpid()}-{self._seq:06d}{_SUFFIX}"
        tmp = self.dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _FLAGS, 0o600)
        try:
            # Locked before it gets its real name, so no reader can take it while we write.
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(tmp, self.dir / name)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        active = _Active(fd, name)
        self._active = active
        self._known.append(name)
        return active

    def write(self, records: list[Record]) -> bool:
        """Append ``records``; False (nothing written) when the spool is full. Raises OSError
        when the disk refuses."""
        if not records:
            return True
        data = b"".join([dumps(record_to_dict(rec)) + b"\n" for rec in records])
        if self._bytes + len(data) > self.max_bytes:
            return False
        active = self._active or self._open_active()
        _write_all(active.fd, data)
        active.lines += len(records)
        active.bytes += len(data)
        self._bytes += len(data)
        self.records += len(records)
        if active.lines >= SEGMENT_RECORDS or active.bytes >= SEGMENT_BYTES:
            self._seal()
        return True

    def _seal(self) -> None:
        if self._active is not None:
            os.close(self._active.fd)  # releases the lock: readers may take it now
            self._active = None

    # -- reading ------------------------------------------------------------------------------
    def _try_claim(self, name: str) -> _Claim | None:
        path = self.dir / name
        try:
            fd = os.open(path, os.O_RDONLY | _FLAGS)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_nlink == 0:  # another process sent and removed it meanwhile
                os.close(fd)
                return None
            data = _read_all(fd)
        except OSError:
            os.close(fd)
            return None
        pos = 0
        with contextlib.suppress(OSError, ValueError):
            pos = int((self.dir / (name + _SENT)).read_text().strip() or 0)
        lines = data.split(b"\n")
        lines.pop()  # what follows the last newline: empty, or a line torn by a kill
        items: list[Record | None] = []
        bad = 0
        for index, line in enumerate(lines):
            if index < pos:
                items.append(None)
                continue
            try:
                items.append(record_from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
                items.append(None)
                bad += 1
        if bad:
            report(
                f"spool-bad:{self.sink_name}",
                f"workflow-traces: sink {self.sink_name} skipped {bad} unreadable lines in "
                f"spool segment {str(path)!r}",
                logging.ERROR,
            )
        return _Claim(fd, name, items, pos, len(data))

    def take(self, count: int) -> SpoolChunk | None:
        """Up to ``count`` records from the oldest segment this process can lock, or None."""
        if self._claim is None:
            self._seal()
            while self._known:
                claim = self._try_claim(self._known.pop(0))
                if claim is not None:
                    self._claim = claim
                    if claim.name.split("-")[1] != str(os.getpid()):
                        self.records += sum(1 for r in claim.items[claim.pos :] if r)
                    break
            else:
                return None
        claim = self._claim
        end = min(len(claim.items), claim.pos + count)
        records = [r for r in claim.items[claim.pos : end] if r is not None]
        return SpoolChunk(records, end)

    def ack(self, chunk: SpoolChunk) -> None:
        """``chunk`` was sent: record the progress, and remove the segment once all is sent."""
        claim = self._claim
        if claim is None:
            return
        claim.pos = chunk.end
        self.records = max(0, self.records - len(chunk.records))
        path = self.dir / claim.name
        sent = self.dir / (claim.name + _SENT)
        if claim.pos >= len(claim.items):
            with contextlib.suppress(OSError):
                path.unlink()
            with contextlib.suppress(OSError):
                sent.unlink()
            os.close(claim.fd)
            self._claim = None
            self._bytes = max(0, self._bytes - claim.size)
            return
        tmp = self.dir / f".{claim.name}{_SENT}.tmp"
        try:
            tmp.write_text(str(claim.pos))
            os.replace(tmp, sent)
        except OSError as exc:
            report(
                f"spool-progress:{self.sink_name}",
                f"workflow-traces: sink {self.sink_name} could not record spool progress "
                f"({exc.strerror}); some records may be sent twice",
            )

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close open segments; what was not sent stays on disk for the next process."""
        self._seal()
        if self._claim is not None:
            os.close(self._claim.fd)
            self._claim = None

    def after_fork(self) -> None:
        """In a forked child: the parent keeps its segments (and their locks)."""
        for held in (self._active, self._claim):
            if held is not None:
                with contextlib.suppress(OSError):
                    os.close(held.fd)  # our copy only: the parent's copy keeps the lock
        self._active = None
        self._claim = None
        self._known = []
        self.records = 0
        self._scan()
