"""escape_terminal: what acts on a terminal is written visibly escaped, the rest kept."""

from __future__ import annotations

from workflow_traces.text import escape_terminal


def test_controls_and_bidi_overrides_are_escaped_the_rest_kept() -> None:
    assert (
        escape_terminal("plain text, ünïcödé, 日本語, emoji 🙂")
        == "plain text, ünïcödé, 日本語, emoji 🙂"
    )
    assert escape_terminal("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert (
        escape_terminal("bell\x07 back\x08 nul\x00 del\x7f")
        == "bell\\x07 back\\x08 nul\\x00 del\\x7f"
    )
    assert escape_terminal("c1 \x9b31m csi \x85 nel") == "c1 \\x9b31m csi \\x85 nel"
    assert escape_terminal("over\rwrite") == "over\\rwrite"
    assert escape_terminal("line\r\nnext\nlast\ttab") == "line\r\nnext\nlast\ttab"
    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
        assert escape_terminal(f"a{ch}b") == f"a\\u{ord(ch):04x}b"
    assert escape_terminal("vt\x0b ff\x0c") == "vt\\x0b ff\\x0c"


def test_one_line_a_record_escapes_newlines_too() -> None:
    assert escape_terminal("a\nb\r\nc\td", newlines=False) == "a\\nb\\r\\nc\td"


def test_every_code_point_below_0xa0_is_either_kept_or_escaped_visibly() -> None:
    for code in range(0xA0):
        ch = chr(code)
        out = escape_terminal(f"x{ch}y")
        if ch in "\t\n" or ch.isprintable():
            assert out == f"x{ch}y", code
        else:
            assert out.isprintable() and out.startswith("x\\") and out.endswith("y"), code
