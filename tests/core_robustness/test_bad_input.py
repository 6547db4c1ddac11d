"""Bad input: a clear error at configuration time, or stored safely at log time.

Never a crash of the caller, and never a lost neighbour: every test logs good records around the
bad one and counts them by record_id in both stores.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from robust_helpers import multi_extras, record_ids, sink_locations

from workflow_traces import (
    ConfigError,
    MultiHandler,
    SQLiteHandler,
    WorkflowFileHandler,
    get_trace,
    open_store,
)


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


def _stored(base: Path, run_id: str) -> list[dict[str, Any]]:
    """Each store's view of the run, as (record_id -> (message, extras)) maps."""
    out = []
    for location in sink_locations(base):
        with open_store(location) as store:
            run = store.get_run(run_id)
        out.append({r.record_id: (r.message, r.extras, r.level) for r in run.records})
    return out


def _around(trace: Any, bad: Any) -> None:
    trace.info("before")
    bad()
    trace.info("after")


@pytest.mark.parametrize(
    ("label", "message", "stored"),
    [
        ("newlines", "line one\nline two\r\nline three", "line one\nline two\r\nline three"),
        ("nul", "a\x00b\x00", "a\x00b\x00"),
        ("surrogates", "bad \ud800 and \udfff end", "bad \\ud800 and \\udfff end"),
        ("control", "\x1b[31mred\x1b[0m\x07", "\x1b[31mred\x1b[0m\x07"),
        ("ten_megabytes", "x" * 10_000_000, "x" * 10_000_000),
    ],
)
def test_odd_messages_are_stored_safely(
    tmp_path: Path, label: str, message: str, stored: str
) -> None:
    trace = get_trace(f"msg-{label}", extras=multi_extras(tmp_path, fail_silently=False))
    _around(trace, lambda: trace.error(message))
    trace.close()
    for view in _stored(tmp_path, f"msg-{label}"):
        assert [m for m, _, _ in view.values()] == ["before", stored, "after"]
    # The readable text files stay one record per line: continuation lines are indented.
    run_dir = tmp_path / "files" / f"run_id=msg-{label}"
    err_lines = (run_dir / "stderr.txt").read_text(encoding="utf-8").splitlines()
    assert all(line.startswith(("20", "    ")) for line in err_lines)
    assert "\x00" not in (run_dir / "stderr.txt").read_text(encoding="utf-8")


def test_messages_that_are_not_text(tmp_path: Path) -> None:
    trace = get_trace("msg-objects", extras=multi_extras(tmp_path, fail_silently=False))
    trace.info(b"\xff\xfe bytes")
    trace.info(12345)
    trace.info(BrokenRepr())  # str() raises: the caller must not see it
    trace.info(None)
    trace.close()
    for view in _stored(tmp_path, "msg-objects"):
        got = [m for m, _, _ in view.values()]
        assert got[:2] == ["b'\\xff\\xfe bytes'", "12345"]
        assert "BrokenRepr" in got[2] and "RuntimeError" in got[2]
        assert got[3] == "None"


def test_extras_that_do_not_serialize_or_refer_to_themselves(tmp_path: Path) -> None:
    cyclic: dict[str, Any] = {"k": 1}
    cyclic["self"] = cyclic
    looped: list[Any] = [1]
    looped.append(looped)
    extras = multi_extras(
        tmp_path,
        fail_silently=False,
        obj=object(),
        broken=BrokenRepr(),
        cyclic=cyclic,
        looped=looped,
        huge=2**80,
        raw=b"\xff",
        nan=float("nan"),
        key_tuple={(1, 2): "tuple key"},
        surrogate="\udc80",
    )
    trace = get_trace("extras-trace", extras=extras)
    trace.info("through the trace")
    # The same kinds of values through a stdlib logger's extra=...
    logger = logging.getLogger("bad_input_extras")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(trace.handler)
    try:
        logger.info("before")
        logger.info("via logger", extra={"cyc": cyclic, "br": BrokenRepr(), "o": object()})
        logger.info("bad %s %s", "too few args")
        logger.info("after")
    finally:
        logger.removeHandler(trace.handler)
    trace.close()
    for view in _stored(tmp_path, "extras-trace"):
        rows = list(view.values())
        assert [m for m, _, _ in rows][:3] == ["through the trace", "before", "via logger"]
        assert "message formatting failed" in rows[3][0]
        assert rows[4][0] == "after"
        ex = rows[0][1]
        assert ex["cyclic"] == {"k": 1, "self": "<cycle>"}
        assert ex["looped"] == [1, "<cycle>"]
        assert ex["huge"] == str(2**80)
        assert ex["broken"].startswith("<unrepresentable BrokenRepr")
        assert ex["obj"].startswith("<object object")
        assert ex["nan"] is None
        assert ex["surrogate"] == "\\udc80"
        via = rows[2][1]
        assert via["cyc"] == {"k": 1, "self": "<cycle>"}
        assert via["br"].startswith("<unrepresentable BrokenRepr")


@pytest.mark.parametrize(
    ("handlers", "expected"),
    [
        (
            [{"type": "kafka", "path": "x"}],
            "handlers[0].type: unknown handler type 'kafka'; valid types: file, sqlite",
        ),
        ([{"type": "file", "buffer_size": 0}], "handlers[0].buffer_size: must be > 0, got 0"),
        (
            [{"type": "file"}, {"type": "sqlite", "buffer_size": -5}],
            "handlers[1].buffer_size: must be > 0, got -5",
        ),
        ([{"type": "sqlite", "flush_interval": 0}], "handlers[0].flush_interval: must be > 0"),
        ([{"type": "file", "buffer_sise": 10}], "did you mean 'buffer_size'"),
        ([{"type": "file", "overflow": "spill"}], "handlers[0].overflow: expected 'block' or"),
    ],
)
@pytest.mark.parametrize("fail_silently", [True, False])
def test_bad_handler_config_fails_at_configuration_time(
    tmp_path: Path, handlers: list[dict[str, Any]], expected: str, fail_silently: bool
) -> None:
    extras = {"trace_type": "multi", "handlers": handlers, "fail_silently": fail_silently}
    with pytest.raises(ConfigError) as info:
        get_trace("bad-config", extras=extras)
    assert expected in str(info.value)
    assert "pydantic" not in str(info.value)


def test_unknown_trace_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trace_type: expected .*'multi'.*got 'carrier-pigeon'"):
        get_trace("bad-type", extras={"trace_type": "carrier-pigeon"})


@pytest.mark.parametrize("value", [0, -1, -8192, "big", None, True])
def test_bad_buffer_size_on_handlers_names_key_and_value(tmp_path: Path, value: Any) -> None:
    for make in (
        lambda: WorkflowFileHandler("bs", base_path=tmp_path, buffer_size=value),
        lambda: SQLiteHandler("bs", db_path=tmp_path / "t.db", buffer_size=value),
    ):
        with pytest.raises(ConfigError) as info:
            make()
        assert "buffer_size" in str(info.value) and repr(value) in str(info.value)
        assert "> 0" in str(info.value)


def test_single_type_bad_buffer_size(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"buffer_size: must be > 0, got -1"):
        get_trace("single", extras={"trace_type": "sqlite", "path": "x.db", "buffer_size": -1})


def _unwritable_paths(tmp_path: Path) -> list[Path]:
    # Tests run as root, so permissions do not stop writes: use a path under a regular file,
    # and one under /proc.
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a folder")
    return [a_file / "logs", Path("/proc/workflow-traces-test/logs")]


def test_unwritable_paths_fail_at_configuration_time(tmp_path: Path) -> None:
    for bad in _unwritable_paths(tmp_path):
        with pytest.raises(ConfigError, match=r"path: cannot create folder") as info:
            WorkflowFileHandler("unwritable", base_path=bad)
        assert str(bad) in str(info.value)
        with pytest.raises(ConfigError, match=r"path: cannot create folder"):
            SQLiteHandler("unwritable", db_path=bad / "t.db")
        extras = {
            "trace_type": "multi",
            "fail_silently": False,
            "handlers": [
                {"type": "sqlite", "path": str(tmp_path / "ok.db")},
                {"type": "file", "path": str(bad)},
            ],
        }
        with pytest.raises(ConfigError, match=r"handlers\[1\]\.path: cannot create folder"):
            get_trace("unwritable", extras=extras)


def test_unwritable_path_left_out_with_a_warning_when_failing_silently(
    tmp_path: Path, reports: Any
) -> None:
    bad = _unwritable_paths(tmp_path)[0]
    extras = {
        "trace_type": "multi",
        "fail_silently": True,
        "handlers": [
            {"type": "file", "path": str(bad)},
            {"type": "sqlite", "path": str(tmp_path / "t.db")},
        ],
    }
    trace = get_trace("partly", extras=extras)
    assert trace.handler_types == ["SQLiteHandler"]
    assert any("left out handler 0 (file)" in m and str(bad) in m for m in reports.messages)
    trace.info("still logged")
    trace.close()
    assert list(record_ids(tmp_path / "t.db", "partly").values()) == [1]


def test_sqlite_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"path: expected a database file, got the folder"):
        SQLiteHandler("folder", db_path=tmp_path)


def test_unknown_level_in_writer(tmp_path: Path, reports: Any) -> None:
    # Failing silently: the record is kept (at WARNING) and the bad level reported.
    trace = get_trace("levels", extras=multi_extras(tmp_path))
    trace.writer("before", "info")
    trace.writer("odd level", "verbose")
    trace.writer("number level", 25)
    trace.writer("exception level", "EXCEPTION")
    trace.writer("after", "warn", is_err=True)
    trace.close()
    for view in _stored(tmp_path, "levels"):
        assert [(m, lvl) for m, _, lvl in view.values()] == [
            ("before", "INFO"),
            ("odd level", "WARNING"),
            ("number level", "Level 25"),
            ("exception level", "ERROR"),
            ("after", "WARNING"),
        ]
    assert any("'verbose'" in m and "debug, info" in m for m in reports.messages)
    # Not failing silently: a clear error naming the level and the valid ones.
    strict = get_trace("levels-strict", extras=multi_extras(tmp_path, fail_silently=False))
    with pytest.raises(ValueError, match=r"level: expected one of debug, info, .*got 'verbose'"):
        strict.writer("odd level", "verbose")
    strict.info("after the error")
    strict.close()
    assert len(record_ids(tmp_path / "traces.db", "levels-strict")) == 1


def test_unknown_level_in_awriter(tmp_path: Path) -> None:
    trace = get_trace("alevels", extras=multi_extras(tmp_path))

    async def main() -> None:
        await trace.awriter("odd", "loud")
        await trace.ainfo(BrokenRepr())
        await trace.aclose()

    asyncio.run(main())
    for location in sink_locations(tmp_path):
        assert len(record_ids(location, "alevels")) == 2


def test_direct_handlers_with_a_bad_record_keep_the_batch(tmp_path: Path) -> None:
    file_handler = WorkflowFileHandler("batch", base_path=tmp_path / "files", buffer_size=1 << 20)
    sqlite_handler = SQLiteHandler("batch", db_path=tmp_path / "traces.db", buffer_size=1000)
    multi = MultiHandler("batch", handlers=[file_handler, sqlite_handler], fail_silently=False)
    logger = logging.getLogger("bad_input_batch")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(multi)
    try:
        for i in range(200):
            if i % 20 == 7:
                logger.info("bad %s \ud800\x00", BrokenRepr(), extra={"x": BrokenRepr()})
            else:
                logger.info("good %d", i)
    finally:
        logger.removeHandler(multi)
    multi.close()
    for location in sink_locations(tmp_path):
        counts = record_ids(location, "batch")
        assert len(counts) == 200 and set(counts.values()) == {1}
