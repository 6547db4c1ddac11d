"""What every REST encoder shares: the request it produces, text truncation, size-bounded packing.

Encoders are pure functions from a batch of records to a list of :class:`Request`; each request
carries the records it holds, so a request that fails can be retried on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ._record import Record

__all__ = ["TRUNCATED_MARK", "Request", "json_array", "pack", "truncate_utf8"]

#: Appended to a text cut short to fit a service's size limit.
TRUNCATED_MARK = "...[truncated]"


class Request(NamedTuple):
    """One HTTP request's body (uncompressed) and the records it carries."""

    records: list[Record]
    body: bytes
    #: Per-request routing, when the service needs it (CloudWatch: the log stream's name).
    key: str | None = None


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut so that it and :data:`TRUNCATED_MARK` take at most ``max_bytes`` in UTF-8
    (never inside a character); ``text`` itself if it fits."""
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= max_bytes:
        return text
    room = max(0, max_bytes - len(TRUNCATED_MARK))
    return data[:room].decode("utf-8", "ignore") + TRUNCATED_MARK


def pack(
    items: Iterable[tuple[Record, bytes]],
    *,
    max_items: int,
    max_bytes: int,
    overhead: int = 2,
    separator: int = 1,
) -> list[tuple[list[Record], list[bytes]]]:
    """Group encoded entries into requests of at most ``max_items`` entries and ``max_bytes``
    bytes, counting ``overhead`` bytes per request and ``separator`` bytes between entries.
    An entry larger than the limit on its own still gets a request of its own."""
    groups: list[tuple[list[Record], list[bytes]]] = []
    records: list[Record] = []
    parts: list[bytes] = []
    size = overhead
    for rec, data in items:
        extra = len(data) + (separator if parts else 0)
        if parts and (len(parts) >= max_items or size + extra > max_bytes):
            groups.append((records, parts))
            records, parts, size = [], [], overhead
            extra = len(data)
        records.append(rec)
        parts.append(data)
        size += extra
    if parts:
        groups.append((records, parts))
    return groups


def json_array(parts: Sequence[bytes]) -> bytes:
    """A JSON array from already-encoded JSON values."""
    return b"[" + b",".join(parts) + b"]"
