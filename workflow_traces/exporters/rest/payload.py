"""What every REST encoder shares: the request it produces, text truncation, size-bounded packing,
and the templates of the encoders' fast path.

Encoders are pure functions from a batch of records to a list of :class:`Request`; each request
carries the records it holds, so a request that fails can be retried on its own.

The fast path: log lines from one place of one run differ only in their time, message and
record_id. An encoder builds the JSON of one such record once, with markers in place of the
values that change (:func:`template`), keeps it per record context (:class:`Contexts`) and
fills it in for each record with string formatting: the bytes are those of the full encoding,
at a fraction of the cost of building a dict and serializing it per record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from workflow_traces.core.record import F_EXTRAS, F_MESSAGE, F_RECORD_ID, F_SIZE, F_TIME_NS, Record
from workflow_traces.exporters.encode import dumps

__all__ = [
    "TRUNCATED_MARK",
    "Contexts",
    "Request",
    "hole",
    "json_text",
    "pack_text",
    "template",
    "truncate_utf8",
    "utf8_len",
]

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


def json_text(text: str) -> str:
    """``text`` as a JSON string literal, as :func:`dumps` writes it (which never fails: text
    that is not valid UTF-8 is escaped)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape: the common case, without a bytes round trip
    return dumps(text).decode()


def utf8_len(text: str) -> int:
    """The size of ``text`` in UTF-8 (``text`` holds valid code points only)."""
    return len(text) if text.isascii() else len(text.encode())


def hole(number: int) -> str:
    """The value to put where :func:`template` must leave hole ``number``."""
    return f"\x00{number}"


def template(value: Any, holes: int) -> tuple[str, ...] | None:
    """The JSON text of ``value`` cut at each hole (``hole(0)``, ``hole(1)``... in the order
    they appear), so that ``parts[0] + v0 + parts[1] + v1 + ...`` is the JSON of ``value``
    with the JSON texts ``v0``, ``v1``... in place of the holes. None when a hole cannot be
    found exactly once."""
    text = dumps(value).decode()
    parts: list[str] = []
    for number in range(holes):
        mark = f'"\\u0000{number}"'
        if text.count(mark) != 1:
            return None
        before, _, text = text.partition(mark)
        parts.append(before)
    parts.append(text)
    return tuple(parts)


#: Record fields that make up a log line's context: all but time_ns, message, record_id,
#: extras (compared by identity) and size.
_VARYING = (F_TIME_NS, F_MESSAGE, F_RECORD_ID, F_EXTRAS, F_SIZE)
_CONTEXT = itemgetter(*(i for i in range(len(Record._fields)) if i not in _VARYING))
_CONTEXTS_MAX = 4096


class Contexts:
    """Templates per record context (see the module's notes), for one encoder and its options.

    A record whose extras object is not the one seen last takes the slow path once; later
    records with the same object share its template (each entry keeps its extras object alive,
    so an id never stands for another object). Safe to share between sink workers: a lost race
    costs a template built twice.
    """

    __slots__ = ("_build", "_cache", "_last_extras")

    def __init__(self, build: Callable[[Record], Any]) -> None:
        self._build = build
        self._cache: dict[Any, tuple[Any, Any]] = {}
        self._last_extras: Any = None

    def get(self, rec: Record) -> Any:
        """``build(rec)`` for ``rec``'s context, made once; None means "take the slow path"."""
        extras = rec[F_EXTRAS]
        if extras is not None and extras is not self._last_extras:
            self._last_extras = extras
            return None
        key = _CONTEXT(rec)
        hit = self._cache.get(key)
        if hit is None or hit[0] is not extras:
            if len(self._cache) >= _CONTEXTS_MAX:
                self._cache.clear()
            hit = self._cache[key] = (extras, self._build(rec))
        return hit[1]


def pack_text(
    records: Sequence[Record],
    texts: Sequence[str],
    *,
    max_items: int,
    max_bytes: int,
    overhead: int = 2,
    separator: int = 1,
) -> list[tuple[Sequence[Record], Sequence[str]]]:
    """Group entries into requests of at most ``max_items`` entries and ``max_bytes`` bytes in
    UTF-8, counting ``overhead`` bytes per request and ``separator`` bytes between entries. An
    entry larger than the limit on its own still gets a request of its own. Sizes are counted
    one by one only when the entries may not all fit in one request."""
    count = len(texts)
    if not count:
        return []
    fixed = overhead + separator * (count - 1)
    if count <= max_items and fixed + 4 * sum(map(len, texts)) <= max_bytes:
        return [(records, texts)]  # the common case: at most 4 bytes a character, it fits
    groups: list[tuple[Sequence[Record], Sequence[str]]] = []
    start = 0
    size = overhead
    for i in range(count):
        extra = utf8_len(texts[i]) + (separator if i > start else 0)
        if i > start and (i - start >= max_items or size + extra > max_bytes):
            groups.append((records[start:i], texts[start:i]))
            start, size = i, overhead
            extra -= separator
        size += extra
    groups.append((records[start:], texts[start:]))
    return groups
