"""Logged text made safe for a terminal: ``escape_terminal``.

Logged text is data: printed as it is, an ESC could move the cursor, recolour or retitle the
terminal, a bare CR or backspaces could overwrite what was printed before it, and a bidi override
could make a line read differently from what it holds. ``escape_terminal`` writes each such
character visibly escaped (``\\x1b``, ``\\r``, ``\\u202e``): the C0 controls but tab and newline
(and CR when it ends a line, CRLF), DEL, the C1 controls, and the Unicode bidi embeddings,
overrides and isolates. Everything else, any script or emoji, is kept.

Used by the CLI for every piece of logged text it prints; meant for any writer of text for
people (the file sink's stdout.txt/stderr.txt). JSONL, SQLite and network sinks keep the exact
text.
"""

from __future__ import annotations

import re

__all__ = ["escape_terminal"]

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")
_UNSAFE_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\b": "\\x08", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: str, *, newlines: bool = True) -> str:
    """``text`` with the characters that act on a terminal written visibly escaped; with
    ``newlines=False`` newlines (and every CR) are escaped too, for one line a record."""
    if text.isprintable():  # the usual case, checked in C
        return text
    return (_UNSAFE if newlines else _UNSAFE_LINE).sub(_escape, text)
