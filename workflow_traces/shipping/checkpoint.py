"""Where ``ship`` remembers what it delivered: one JSON file per source, holding for each
destination the positions reached in the source (see ``source``).

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

__all__ = ["Checkpoint", "default_path"]

_VERSION = 1


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
