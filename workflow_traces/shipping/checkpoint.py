"""Where ``ship`` remembers what it delivered: one JSON file per source, holding for each
destination the positions reached in the source (see ``source``) and, for a SQLite source,
**marks**: the record id of the row at a position. Row numbers (``seq``) are reused once the
newest rows are pruned, so a position alone does not prove what was shipped; the source checks
the marks before it resumes (``SQLiteSource.verify``).

It is written after each delivered batch, to a new file moved over the old one, so a ship
killed at any point leaves the last whole checkpoint. A lock file keeps two ships of the same
source from running at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

from workflow_traces.errors import ConfigError
from workflow_traces.shipping.source import ALL

__all__ = ["Checkpoint", "default_path", "remember"]

_VERSION = 1
#: Marks kept for "everything up to here" (older ones are thinned out, so they reach back
#: further the older they are); a run's position keeps one.
_ANCHORS = 32


def remember(marks: dict[str, list[list[Any]]], key: str, seq: int, record_id: str) -> None:
    """Note that the row at ``seq`` held ``record_id`` when ``key``'s position reached it."""
    anchors = marks.setdefault(key, [])
    if anchors and anchors[-1][0] >= seq:
        anchors.pop()
    anchors.append([seq, record_id])
    if key != ALL:
        del anchors[:-1]
    elif len(anchors) > _ANCHORS:
        half = _ANCHORS // 2
        anchors[:] = anchors[:half:2] + anchors[half:]


def default_path(source: Path) -> Path:
    """``traces.db.ship.json`` beside a database; ``.ship.json`` inside a folder."""
    if source.is_dir():
        return source / ".ship.json"
    return source.with_name(source.name + ".ship.json")


class Checkpoint:
    """The positions delivered per destination, in ``path``. Use as a context manager."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self._lock_fd: int | None = None
        try:
            fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise ConfigError(
                f"state: cannot write the checkpoint beside the source ({path}: "
                f"{exc.strerror}); give another place with --state"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"state: another ship from this source is running (it holds {path}.lock)"
            ) from None
        self._lock_fd = fd
        self._data: dict[str, Any] = {"version": _VERSION, "source": source, "destinations": {}}
        if path.exists():
            try:
                data = orjson.loads(path.read_bytes())
                if not isinstance(data.get("destinations"), dict):
                    raise ValueError("no destinations")
            except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
                self.close()
                raise ConfigError(
                    f"state: {path} is not a ship checkpoint ({exc}); move it aside to ship "
                    "everything again"
                ) from None
            self._data = data

    def positions(self, destination: str) -> dict[str, int]:
        """The positions delivered to ``destination``: a live dict, saved by ``save``."""
        entry = self._data["destinations"].setdefault(destination, {"positions": {}})
        positions: dict[str, int] = entry["positions"]
        return positions

    def marks(self, destination: str) -> dict[str, list[list[Any]]]:
        """The marks per position key of ``destination`` (see ``remember``): a live dict."""
        entry = self._data["destinations"].setdefault(destination, {"positions": {}})
        marks: dict[str, list[list[Any]]] = entry.setdefault("marks", {})
        return marks

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(self._data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
