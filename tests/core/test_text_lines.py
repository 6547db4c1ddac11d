"""The readable lines of the file sink, checked against lines made here, the plain way, from the
records the SQLite store holds: every record's date to the microsecond, level, names, message
and call site, while consecutive records change names, levels and call sites."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflow_traces import open_store, trace_scope
from workflow_traces.exporters.file import _text


def _expected(rec: Any) -> str:
    when = datetime.fromtimestamp(rec.time_ns // 1000 / 1e6, UTC)
    names = "/".join(n for n in (rec.workflow_name, rec.job_name, rec.stage_name) if n)
    where = f" ({Path(rec.filename).name}:{rec.lineno})"
    head = f"{when:%Y-%m-%d %H:%M:%S}.{rec.time_ns // 1000 % 1_000_000:06d} ({rec.run_id})"
    return f"{head} [{rec.level}] " + (f"{names}: " if names else "") + rec.message + where


def test_text_lines_match_the_records(multi: Any, tmp_path: Path) -> None:
    trace = multi("text-1", workflow_name="wf")
    other = multi("text-1", workflow_name="other")  # same run, other names
    for i in range(300):
        if i % 7 == 0:
            with trace_scope(job_name="j", stage_name=f"s{i % 3}"):
                trace.info(f"scoped {i}")
        elif i % 5 == 0:
            trace.warning(f"warned {i}")
        elif i % 11 == 0:
            other.info(f"other {i}")
        else:
            trace.debug(f"plain {i}")
        trace.info(f"second site {i}")
    other.close()
    trace.close()
    records = open_store(tmp_path / "traces.db").get_run("text-1").records
    assert len(records) == 600
    text = (tmp_path / "files" / "run_id=text-1" / "stdout.txt").read_text().splitlines()
    assert sorted(text) == sorted(_expected(r) for r in records)
    # Microseconds below 100000 keep their leading zeros.
    early = records[0]._replace(time_ns=1_767_225_600_000_006_999)
    assert _text([tuple(early)]).startswith("2026-01-01 00:00:00.000006 (text-1) ")
    # Every microseconds value written as six digits, across both halves' edges.
    for micros in (0, 999, 1000, 1001, 99_999, 100_000, 654_321, 999_000, 999_999):
        rec = records[0]._replace(time_ns=1_767_225_600_000_000_000 + micros * 1000 + 999)
        assert _text([tuple(rec)]).startswith(f"2026-01-01 00:00:00.{micros:06d} (text-1) ")


#: Text that would act on a terminal if printed as it is, and how the readable files show it.
ATTACKS = {
    "\x1b]0;owned\x07": "\\x1b]0;owned\\x07",  # retitle the terminal (ESC, BEL)
    "\x1b[2J\x1b[31m": "\\x1b[2J\\x1b[31m",  # clear the screen, recolour
    "done\rFAILED": "done\\rFAILED",  # a bare CR overwrites the line
    "ok\b\bno": "ok\\x08\\x08no",
    "c1 \x9b31m": "c1 \\x9b31m",  # the C1 control sequence introducer
    "bidi \u202etxt.exe": "bidi \\u202etxt.exe",  # a right-to-left override
    "nul \x00 del \x7f": "nul \\x00 del \\x7f",
}


def test_the_readable_files_show_terminal_control_characters_escaped(
    multi: Any, tmp_path: Path
) -> None:
    trace = multi("text-esc", workflow_name="wf\x1b[1m")
    for attack in ATTACKS:
        trace.info(attack)
    try:
        raise ValueError("in the traceback \x1b[5m too")
    except ValueError:
        trace.exception("failed \x07")
    trace.info("tab\tkept")
    trace.close()
    folder = tmp_path / "files" / "run_id=text-esc"
    shown = (folder / "stdout.txt").read_text() + (folder / "stderr.txt").read_text()
    # Only newline and tab of the C0 controls, no DEL, no C1 control, no bidi control remain.
    unsafe = [
        ch
        for ch in shown
        if (ord(ch) < 32 and ch not in "\n\t")
        or 0x7F <= ord(ch) <= 0x9F
        or 0x202A <= ord(ch) <= 0x202E
        or 0x2066 <= ord(ch) <= 0x2069
    ]
    assert unsafe == []
    for escaped in ATTACKS.values():
        assert escaped in shown
    assert "wf\\x1b[1m: " in shown and "in the traceback \\x1b[5m too" in shown
    assert "failed \\x07" in shown and "tab\tkept" in shown
    # The JSON lines and SQLite keep the exact text.
    stored = [r.message for r in open_store(tmp_path / "traces.db").get_run("text-esc").logs]
    from_files = [r.message for r in open_store(tmp_path / "files").get_run("text-esc").logs]
    assert stored[: len(ATTACKS)] == list(ATTACKS) == from_files[: len(ATTACKS)]
    assert open_store(tmp_path / "traces.db").get_run("text-esc").workflow_name == "wf\x1b[1m"
