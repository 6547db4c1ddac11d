"""Text from records and files made safe to print: logged text never acts as escape sequences
in a terminal."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with every character that is not printable (escape, other control characters,
    lone surrogates) written as a ``\\x1b``-style escape; tabs and new lines are kept."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in "\t\n":
            try:
                ch.encode("utf-8")
                out.append(ch)
                continue
            except UnicodeEncodeError:
                pass
        out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)
