"""Every way of logging names the user's own line: the level methods (made per level, see
``_trace._log_call``), ``writer``, ``exception``, ``event``, the async twins, and the same on the
trace a workflow scope hands out (``ScopedTrace``, whose calls go through its own ``_record``)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from workflow_traces.integrations.plain import stage, workflow

from workflow_traces import open_store


def _here() -> int:
    """The line number of the caller's line."""
    return sys._getframe(1).f_lineno


def _log_every_way(trace: Any) -> list[tuple[str, int | None]]:
    """Log once through each way in; the (message, line) of each, in order."""
    lines: list[tuple[str, int | None]] = []
    for name in ("debug", "info", "warning", "error", "critical"):
        assert getattr(trace, name)(name) is None
        lines.append((name, _here() - 1))
    trace.writer("writer", "info")
    lines.append(("writer", _here() - 1))
    trace.writer("custom", 25)
    lines.append(("custom", _here() - 1))
    try:
        raise KeyError("boom")
    except KeyError:
        trace.exception("exception")
        lines.append(("exception", _here() - 1))

    async def in_a_task() -> None:
        await trace.ainfo("ainfo")
        lines.append(("ainfo", _here() - 1))
        await trace.awriter("awriter", "warning")
        lines.append(("awriter", _here() - 1))
        try:
            raise KeyError("boom")
        except KeyError:
            await trace.aexception("aexception")
            lines.append(("aexception", _here() - 1))

    asyncio.run(in_a_task())
    trace.event("stage", "started", name="s1")
    lines.append(("stage 's1' started", _here() - 1))

    def helper(message: str, how: str) -> None:
        """A wrapper that names its caller's line, the stdlib's way: stacklevel=2."""
        if how == "info":
            trace.info(message, stacklevel=2)
        elif how == "writer":
            trace.writer(message, "info", stacklevel=2)
        else:
            trace.event("stage", "succeeded", name=message, stacklevel=2)

    helper("wrapped info", "info")
    lines.append(("wrapped info", _here() - 1))
    helper("wrapped writer", "writer")
    lines.append(("wrapped writer", _here() - 1))
    helper("s2", "event")
    lines.append(("stage 's2' succeeded", _here() - 1))
    return lines


def _check(records: list[Any], lines: list[tuple[str, int | None]]) -> None:
    mine = [r for r in records if r.message in dict(lines)]
    assert [(r.message, r.lineno) for r in mine] == lines
    assert {r.filename for r in mine} == {__file__}
    funcs = dict.fromkeys(("ainfo", "awriter", "aexception"), "in_a_task")
    assert [r.func_name for r in mine] == [funcs.get(m, "_log_every_way") for m, _ in lines]


def test_a_trace_names_the_line_of_every_call(multi: Any, tmp_path: Path) -> None:
    trace = multi("sites-1")
    lines = _log_every_way(trace)
    trace.close()
    levels = {
        r.message: r.level for r in open_store(tmp_path / "traces.db").get_run("sites-1").records
    }
    assert levels["custom"] == "Level 25" and levels["critical"] == "CRITICAL"
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        _check(open_store(location).get_run("sites-1").records, lines)


def test_a_scoped_trace_names_the_line_and_stamps_its_scope(tmp_path: Path) -> None:
    sinks = {
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": str(tmp_path / "files")},
            {"type": "sqlite", "path": str(tmp_path / "traces.db")},
        ],
    }
    with workflow("wf", run_id="sites-2", **sinks) as wf_trace, stage("st") as trace:
        assert type(trace).__name__ == "ScopedTrace"
        lines = _log_every_way(trace)
        wf_trace.info("from the workflow's trace")
    for location in (tmp_path / "files", tmp_path / "traces.db"):
        records = open_store(location).get_run("sites-2").records
        _check(records, lines)
        logs = [r for r in records if r.message in dict(lines) and r.kind == "log"]
        assert len(logs) == len(lines) - 2  # all but the two events, which name their own stages
        assert {(r.workflow_name, r.stage_name) for r in logs} == {("wf", "st")}
        outer = [r for r in records if r.message == "from the workflow's trace"]
        assert [(r.stage_name, r.func_name) for r in outer] == [
            ("st", "test_a_scoped_trace_names_the_line_and_stamps_its_scope")
        ]


def test_call_sites_far_into_long_code_keep_their_own_lines(tmp_path: Path) -> None:
    """Lines far into a function are looked up by code object and offset (core.lines): each
    call site still gets its own line, also two functions' calls at the same offset, and a
    function made again at the same address."""
    from workflow_traces import get_trace
    from workflow_traces.core.lines import NEAR

    trace = get_trace("far-lines", extras={"trace_type": "sqlite", "path": str(tmp_path / "t.db")})
    padding = "".join(f"    x{i} = {i}\n" for i in range(200))

    def make(name: str, skip: int) -> Any:
        # A function whose log calls sit after `padding` (far past NEAR bytes of code),
        # ``skip`` blank lines further down in each made function, at the same offsets.
        source = f"def {name}(trace):\n{padding}" + "\n" * skip
        source += "    trace.info('a')\n    for i in range(3):\n        trace.info('b')\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<{name}>", "exec"), namespace)
        return namespace[name]

    first, second = make("first", 0), make("second", 5)
    assert first.__code__.co_code == second.__code__.co_code  # the same offsets, other lines
    assert len(first.__code__.co_code) > NEAR
    for fn in (first, second, first):
        fn(trace)
    again = make("first", 9)  # a new code object, perhaps where an old one was
    again(trace)
    trace.close()
    with open_store(tmp_path / "t.db") as store:
        got = [(r.func_name, r.message, r.lineno) for r in store.get_run("far-lines").records]
    a, b = 202, 204  # the lines of trace.info('a') and trace.info('b') after the padding
    expected = []
    for name, skip in (("first", 0), ("second", 5), ("first", 0), ("first", 9)):
        expected += [(name, "a", a + skip)] + [(name, "b", b + skip)] * 3
    assert got == expected
