"""Line numbers of log calls far into their code, looked up instead of recomputed.

CPython finds a frame's line number by scanning its code's line table from the start, so
``frame.f_lineno`` costs about 2.5 ns per byte of code before the call: 3 µs on line 300 of a
function or a script, more than the rest of a log call (measured). The hot path
(``core.trace``) reads ``f_lineno`` itself for call sites nearer than :data:`NEAR` bytes, where
that is cheaper than a lookup, and asks :func:`far_line` for the others.
"""

from __future__ import annotations

from types import CodeType, FrameType

__all__ = ["NEAR", "far_line"]

#: Bytes of code before a call site below which ``f_lineno`` is cheaper than :func:`far_line`.
NEAR = 128
_MAX = 4096
# Keyed by the code object's id and the call's instruction offset. Each entry holds its code
# object, so the id in its key stays that object's; at _MAX entries the cache starts over.
_LINES: dict[tuple[int, int], tuple[CodeType, int]] = {}


def far_line(frame: FrameType, code: CodeType, lasti: int) -> int:
    """The line number of ``frame``, running ``code`` at byte offset ``lasti``."""
    key = (id(code), lasti)
    hit = _LINES.get(key)
    if hit is not None and hit[0] is code:
        return hit[1]
    lineno = frame.f_lineno
    if len(_LINES) >= _MAX:
        _LINES.clear()
    _LINES[key] = (code, lineno)
    return lineno
