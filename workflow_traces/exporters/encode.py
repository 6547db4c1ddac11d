"""Turning records into JSON-safe dicts and bytes, and back. Runs on sink workers, never on the
caller's thread.

Bad input is stored safely: text that is not valid UTF-8 (lone surrogates) is escaped, values that
do not serialize are stored as their repr, and self-referencing containers are cut at the cycle.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from workflow_traces.core.record import F_SIZE, F_TIME_NS, Record

__all__ = [
    "clean_text",
    "dumps",
    "iso_utc",
    "json_safe",
    "record_from_dict",
    "record_to_dict",
]

_OPTS = orjson.OPT_NON_STR_KEYS


def clean_text(text: str) -> str:
    """``text`` if it encodes as UTF-8, otherwise with the bad code points backslash-escaped."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _repr(value: Any) -> str:
    try:
        return clean_text(repr(value))
    except Exception as exc:  # a broken __repr__ must not lose the record
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def json_safe(value: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """A copy of ``value`` that orjson always encodes: containers copied, cycles cut, anything
    else that does not serialize replaced by its repr."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict | list | tuple | set | frozenset):
        if id(value) in _seen:
            return "<cycle>"
        seen = _seen | {id(value)}
        if isinstance(value, dict):
            return {clean_text(str(k)): json_safe(v, seen) for k, v in value.items()}
        return [json_safe(v, seen) for v in value]
    return _repr(value)


def dumps(value: Any) -> bytes:
    """JSON bytes for ``value``; never raises for odd input."""
    try:
        return orjson.dumps(value)
    except (TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        pass
    try:
        return orjson.dumps(value, default=_repr, option=_OPTS)
    except (TypeError, RecursionError):
        return orjson.dumps(json_safe(value), option=_OPTS)


_second = (-1, "")


def iso_utc(time_ns: int) -> str:
    """``time_ns`` as ISO-8601 UTC with microseconds, e.g. ``2026-01-02T03:04:05.000006+00:00``.

    The date and time to the second are formatted once per second and reused.
    """
    global _second
    sec = time_ns // 1_000_000_000
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return "%s.%06d+00:00" % (cached[1], time_ns // 1000 % 1_000_000)  # noqa: UP031 - faster


_DICT_KEYS = Record._fields[:F_SIZE]  # all but the in-memory size estimate


def record_to_dict(rec: Record) -> dict[str, Any]:
    """The record as a flat JSON-ready dict: an ISO-8601 UTC ``timestamp``, then every field
    under its own name. Off the hot paths (the spool, and the network encoders' per-context
    templates)."""
    d: dict[str, Any] = {"timestamp": iso_utc(rec[F_TIME_NS])}
    d.update(zip(_DICT_KEYS, rec, strict=False))
    return d


_FIELDS = Record._fields


def record_from_dict(d: dict[str, Any]) -> Record:
    """Rebuild a record from :func:`record_to_dict`'s output (unknown keys are ignored)."""
    values = {k: d[k] for k in _FIELDS if k in d}
    if "time_ns" not in values and "timestamp" in d:
        from datetime import datetime

        ts = datetime.fromisoformat(d["timestamp"])
        values["time_ns"] = int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000
    values.setdefault("size", 256)
    return Record(**values)
