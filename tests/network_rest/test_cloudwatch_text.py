"""CloudWatch's text event format (the default): its layout, what the stream's name leaves out,
tracebacks and extras below the message, the quoting that keeps fields space-separated, the
README's Logs Insights pattern reading it back, and the encoder's events equal to the function
that documents them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from workflow_traces.core.record import Record
from workflow_traces.exporters.rest import cloudwatch as cw

README = Path(__file__).resolve().parents[2] / "README.md"


def _record(message: str = "loaded 20 rows", **fields: Any) -> Record:
    values: dict[str, Any] = {
        "time_ns": 1_700_000_000_123_456_789,
        "level": "INFO",
        "levelno": 20,
        "message": message,
        "run_id": "run-1",
        "parent_run_id": None,
        "workflow_name": "etl",
        "job_name": "load",
        "stage_name": "write",
        "filename": "/home/me/project/pipeline.py",
        "lineno": 42,
        "func_name": "write",
        "process": 7,
        "thread": 1,
        "host": "worker-7",
        "record_id": "0123456789abcdef-1000000000000001",
    }
    values.update(fields)
    return Record(**values)


def test_a_small_record_is_one_short_line() -> None:
    line = cw.cloudwatch_text(_record())
    assert line == "INFO worker-7 load write - pipeline.py:42 loaded 20 rows"
    # 10,000 such events fit in one batch as CloudWatch counts it.
    assert (len(line) + cw.CLOUDWATCH_EVENT_OVERHEAD) * 10_000 <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    assert len(cw.cloudwatch_message(_record())) > 150  # the JSON form of the same record


def test_the_stream_name_decides_which_fields_the_line_holds() -> None:
    rec = _record(logger="app.db")
    assert cw.cloudwatch_text(rec, log_stream="{run_id}/{host}") == (
        "INFO load write app.db pipeline.py:42 loaded 20 rows"
    )
    # A stream per host holds many runs: the run id and the workflow come after the level.
    assert cw.cloudwatch_text(rec, log_stream="{host}") == (
        "INFO run-1 etl load write app.db pipeline.py:42 loaded 20 rows"
    )
    assert cw.cloudwatch_text(rec, log_stream="all-{process}") == (
        "INFO run-1 etl worker-7 load write app.db pipeline.py:42 loaded 20 rows"
    )


def test_fields_that_are_not_set_or_hold_spaces_stay_one_field_each() -> None:
    rec = _record(job_name="nightly load", stage_name=None, filename=None, level="Level 25")
    line = cw.cloudwatch_text(rec)
    assert line == '"Level 25" worker-7 "nightly load" - - - loaded 20 rows'
    odd = _record(job_name="-", stage_name="", logger='a"b', host="tab\there")
    assert (
        cw.cloudwatch_text(odd) == 'INFO "tab\\there" "-" "" "a\\"b" pipeline.py:42 loaded 20 rows'
    )


def test_traceback_and_extras_follow_the_message() -> None:
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n'
    rec = _record(
        "failed",
        level="ERROR",
        exc_type="ValueError",
        exc_message="boom",
        exc_traceback=tb,
        extras={"rows": 3, "table": "t"},
    )
    assert cw.cloudwatch_text(rec).split("\n") == [
        "ERROR worker-7 load write - pipeline.py:42 failed",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "ValueError: boom",
        'extras: {"rows":3,"table":"t"}',
    ]
    bare = _record("failed", exc_type="KeyError", exc_message="'k'")
    assert cw.cloudwatch_text(bare).endswith(" failed\nKeyError: 'k'")


def test_a_lifecycle_event_line_says_its_event_in_its_message() -> None:
    rec = _record(
        "job 'load' succeeded in 1.234s",
        stage_name=None,
        kind="event",
        scope="job",
        event="succeeded",
        status="succeeded",
        duration=1.234,
    )
    assert cw.cloudwatch_text(rec) == (
        "INFO worker-7 load - - pipeline.py:42 job 'load' succeeded in 1.234s"
    )


def test_the_readme_insights_pattern_reads_the_fields_back() -> None:
    readme = README.read_text()
    (pattern,) = re.findall(r"parse @message /(.+?)/\s*$", readme, re.MULTILINE)
    regex = re.compile(pattern.replace("(?<", "(?P<"))
    tb = "Traceback (most recent call last):\nValueError: boom"
    cases = [
        (_record(), ("INFO", "worker-7", "load", "write", "-", "pipeline.py:42")),
        (
            _record("failed", level="ERROR", logger="app.db", exc_type="E", exc_traceback=tb),
            ("ERROR", "worker-7", "load", "write", "app.db", "pipeline.py:42"),
        ),
    ]
    for rec, fields in cases:
        found = regex.match(cw.cloudwatch_text(rec))
        assert found is not None
        names = ("level", "host", "job", "stage", "logger", "source")
        assert tuple(found.group(n) for n in names) == fields
        assert found.group("msg").startswith(rec.message)


def test_text_events_are_the_documented_lines_in_valid_json() -> None:
    recs = [
        _record(f"line {i}", time_ns=1_700_000_000_000_000_000 + i * 10**6, lineno=i)
        for i in range(50)
    ]
    recs += [
        _record('quote " and \\ and\nnew line', time_ns=1_700_000_000_100_000_000),
        _record("lone \ud800 surrogate and é", time_ns=1_700_000_000_200_000_000),
        _record("with extras", time_ns=1_700_000_000_300_000_000, extras={"n": 1}),
    ]
    for stream in ("{run_id}", "{host}", "{run_id}/{host}"):
        (req,) = cw.encode_cloudwatch(list(reversed(recs)), "g", stream)
        events = orjson.loads(req.body)["logEvents"]
        assert [e["message"] for e in events] == [
            cw.cloudwatch_text(r, log_stream=stream).replace("\ud800", "\\ud800")
            for r in req.records
        ]
        assert [e["timestamp"] for e in events] == [r.time_ns // 1_000_000 for r in req.records]


def test_the_json_format_is_still_there() -> None:
    (req,) = cw.encode_cloudwatch([_record()], "g", "{run_id}", fmt="json")
    (event,) = orjson.loads(req.body)["logEvents"]
    body = orjson.loads(event["message"])
    assert body["message"] == "loaded 20 rows"
    assert body["record_id"] == "0123456789abcdef-1000000000000001"
    assert "run_id" not in body  # the stream's name
