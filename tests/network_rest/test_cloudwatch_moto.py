"""CloudWatch batches checked against moto's CloudWatch Logs server (software we did not write)
and read back through boto3: both PutLogEvents splits (10,000 events; 1,048,576 bytes counting 26
bytes an event) on small and large real records, in both event formats, counted (by message for
text, by record_id for JSON), in order, with their timestamps. moto does not enforce the limits,
so each request our target sent is also captured (an httpx request hook on the client the target
uses) and measured as CloudWatch counts it."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from rest_helpers import AWS

from workflow_traces.core.record import Record, new_record_id
from workflow_traces.exporters.rest import cloudwatch as cw
from workflow_traces.exporters.rest.cloudwatch_http import CloudWatchTarget
from workflow_traces.exporters.rest.targets import make_target
from workflow_traces.settings.sinks import RestAPIConfig
from workflow_traces.testing import memory_sink

pytestmark = pytest.mark.network


def _record(message: str, t_ns: int, run_id: str) -> Record:
    return Record(
        time_ns=t_ns,
        level="INFO",
        levelno=20,
        message=message,
        run_id=run_id,
        parent_run_id=None,
        workflow_name=None,
        job_name=None,
        stage_name=None,
        filename=None,
        lineno=None,
        func_name=None,
        process=1,
        thread=1,
        host="ip-10-0-0-1",
        record_id=new_record_id(),
    )


def _events_of(body: bytes) -> list[dict[str, Any]]:
    return list(orjson.loads(body)["logEvents"])


def _batch_size(events: list[dict[str, Any]]) -> int:
    """A PutLogEvents batch's size as CloudWatch counts it."""
    return sum(len(e["message"].encode()) + cw.CLOUDWATCH_EVENT_OVERHEAD for e in events)


def _send_all(
    moto_url: str, records: list[Record], stream: str, fmt: cw.CloudWatchFormat
) -> list[bytes]:
    """Encode and send ``records`` with the real target; the PutLogEvents bodies it sent."""
    creds = (AWS["aws_access_key_id"], AWS["aws_secret_access_key"], None)
    target = CloudWatchTarget(moto_url, "us-east-1", "wt-splits", stream, creds, fmt=fmt)
    return _send_with(target, records)


def _send_with(target: Any, records: list[Record]) -> list[bytes]:
    sent: list[bytes] = []

    def capture(request: httpx.Request) -> None:
        if request.headers.get("x-amz-target", "").endswith(".PutLogEvents"):
            sent.append(request.read())

    with httpx.Client(event_hooks={"request": [capture]}) as client:
        for request in target.encode(records):
            assert target.send(client, request) == (0, None)
    return sent


def _read_back(moto_url: str, stream: str) -> list[dict[str, Any]]:
    import boto3

    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.get_log_events(
            logGroupName="wt-splits",
            logStreamName=stream,
            startFromHead=True,
            **({"nextToken": token} if token else {}),
        )
        if not page["events"]:
            return events
        events.extend(page["events"])
        token = page["nextForwardToken"]


_PIPELINE = """\
from workflow_traces.integrations.plain import job, stage, workflow


def run(rows, sink):
    with workflow("etl", handlers=[{"type": "memory", "name": sink}]):
        with job("load"):
            with stage("write") as trace:
                for i in range(rows):
                    trace.info(f"loaded {i} rows")
"""


def _traced_records(tmp_path: Path, rows: int) -> list[Record]:
    """The records of a real trace: a user's pipeline.py with a plain-adapter workflow, job and
    stage, logging ordinary messages, into the in-memory sink."""
    path = tmp_path / "pipeline.py"
    path.write_text(_PIPELINE)
    spec = importlib.util.spec_from_file_location("cw_pipeline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.run(rows, "cloudwatch-count-split")
    records = list(memory_sink("cloudwatch-count-split"))
    assert len(records) == rows + 6  # and started/succeeded of the workflow, job and stage
    # This machine's host name can be of any length (a CI runner's may be 40 characters): the
    # records get an EC2 instance's usual name instead, the only field changed.
    return [r._replace(host="ip-10-0-1-23.ec2.internal") for r in records]


def _text_message(line: str) -> str:
    """The message of a text event in a ``{run_id}`` stream: what follows level, host, job,
    stage, logger and source."""
    return line.split(" ", 6)[6]


def test_default_format_reaches_the_count_split_on_a_real_trace(
    moto_url: str, tmp_path: Path
) -> None:
    records = _traced_records(tmp_path, 25_000)
    run = records[0].run_id
    cfg = RestAPIConfig(service_type="cloudwatch", api_url=moto_url, log_group="wt-splits", **AWS)
    assert cfg.cloudwatch_format == "text" and cfg.log_stream == "{run_id}"  # the defaults
    target, _ = make_target(cfg, None)
    sent = _send_with(target, list(reversed(records)))
    counts = [len(_events_of(body)) for body in sent]
    assert counts == [10_000, 10_000, 5_006]  # cut by the count, not by the bytes
    for body in sent:
        assert _batch_size(_events_of(body)) <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    lines = [e["message"] for body in sent for e in _events_of(body) if " rows" in e["message"]]
    assert len(lines) == 25_000
    # Each log line, host and source included, within the 104 bytes that 10,000 events can take.
    largest = max(len(line.encode()) for line in lines)
    assert largest + cw.CLOUDWATCH_EVENT_OVERHEAD <= cw.CLOUDWATCH_MAX_BATCH_BYTES // 10_000

    events = _read_back(moto_url, run)
    in_order = sorted(records, key=lambda r: r.time_ns)
    got = [_text_message(e["message"]) for e in events]
    assert len(got) == len(set(got)) == 25_006  # every record once: the messages are unique
    assert got == [r.message for r in in_order]  # in time order
    assert [e["timestamp"] for e in events] == [r.time_ns // 1_000_000 for r in in_order]
    line = next(e["message"] for e in events if e["message"].endswith(" loaded 7 rows"))
    lineno = next(r.lineno for r in records if r.message == "loaded 7 rows")
    assert line == f"INFO ip-10-0-1-23.ec2.internal load write - pipeline.py:{lineno} loaded 7 rows"
    assert events[0]["message"].endswith(" workflow 'etl' started")  # names the workflow


def test_count_split_on_small_records_read_back_through_boto3(moto_url: str) -> None:
    base = time.time_ns() - 60 * 10**9
    run = "run-count-split"
    records = [_record(".", base + i * 1000, run) for i in range(25_000)]
    # The JSON format, progress ticks in a stream per run and host: 104 bytes an event as
    # CloudWatch counts it (77 of them the level, the record_id and the JSON around them), so
    # even in JSON the 10,000-events limit comes before the 1,048,576 bytes, but only for these.
    template = "{run_id}/{host}"
    cost = len(cw.cloudwatch_message(records[0], log_stream=template)) + 26
    assert cost * cw.CLOUDWATCH_MAX_EVENTS <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    sent = _send_all(moto_url, list(reversed(records)), template, "json")
    assert [len(_events_of(body)) for body in sent] == [10_000, 10_000, 5_000]
    for body in sent:
        assert _batch_size(_events_of(body)) <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    events = _read_back(moto_url, f"{run}/ip-10-0-0-1")
    ids = [orjson.loads(e["message"])["record_id"] for e in events]
    assert len(ids) == len(set(ids)) == 25_000
    assert ids == [r.record_id for r in records]  # every record once, in time order
    assert [e["timestamp"] for e in events] == [r.time_ns // 1_000_000 for r in records]
    assert orjson.loads(events[0]["message"]) == {
        "level": "INFO",
        "message": ".",
        "record_id": records[0].record_id,
    }  # the run id and the host are the stream's name, the time the event's timestamp


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_byte_split_on_large_records_read_back_through_boto3(
    moto_url: str, fmt: cw.CloudWatchFormat
) -> None:
    base = time.time_ns() - 60 * 10**9
    run = f"run-byte-split-{fmt}"
    records = [_record(f"{i:03d}" + "x" * 100_000, base + i * 10**6, run) for i in range(25)]
    sent = _send_all(moto_url, records, "{run_id}-{host}", fmt)
    counts = [len(_events_of(body)) for body in sent]
    assert counts == [10, 10, 5]  # 10 x 100 KB fit in 1,048,576 bytes; 11 do not
    for body in sent:
        assert _batch_size(_events_of(body)) <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    events = _read_back(moto_url, f"{run}-ip-10-0-0-1")
    assert [e["timestamp"] for e in events] == [r.time_ns // 1_000_000 for r in records]
    if fmt == "json":
        got = [orjson.loads(e["message"]) for e in events]
        assert [g["record_id"] for g in got] == [r.record_id for r in records]
        assert [g["message"] for g in got] == [r.message for r in records]  # nothing cut
        assert all("host" not in g and "run_id" not in g for g in got)  # both name the stream
    else:
        # level, job, stage, logger, source (none here), then the message: nothing cut; the
        # run id and the host name the stream.
        assert [e["message"] for e in events] == [f"INFO - - - - {r.message}" for r in records]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_large_message_keeps_what_the_event_limit_allows(
    moto_url: str, fmt: cw.CloudWatchFormat
) -> None:
    run = f"run-large-{fmt}"
    text = "".join(chr(0x61 + i % 26) for i in range(300_000))  # 300 KB
    (rec,) = [_record(text, time.time_ns(), run)]
    (body,) = _send_all(moto_url, [rec], "{run_id}", fmt)
    (event,) = _events_of(body)
    size = len(event["message"].encode()) + cw.CLOUDWATCH_EVENT_OVERHEAD
    assert size <= cw.CLOUDWATCH_MAX_EVENT_BYTES
    (back,) = _read_back(moto_url, run)
    if fmt == "json":
        got = orjson.loads(back["message"])
        assert got["truncated"] is True
        kept = got["message"]
    else:
        kept = back["message"].removeprefix("INFO ip-10-0-0-1 - - - - ")
    assert kept.endswith("...[truncated]")
    kept = kept.removesuffix("...[truncated]")
    assert text.startswith(kept)
    # All of the 256 KB but the event's other fields and the mark: not a quarter of it.
    assert len(kept) > cw.CLOUDWATCH_MAX_EVENT_BYTES - 200
