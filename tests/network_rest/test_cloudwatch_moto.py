"""CloudWatch batches checked against moto's CloudWatch Logs server (software we did not write)
and read back through boto3: both PutLogEvents splits (10,000 events; 1,048,576 bytes counting 26
bytes an event) on small and large real records, counted by record_id, in order, with their
timestamps. moto does not enforce the limits, so each request our target sent is also captured
(an httpx request hook on the client the target uses) and measured as CloudWatch counts it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from rest_helpers import AWS

from workflow_traces.core.record import Record, new_record_id
from workflow_traces.exporters.rest import cloudwatch as cw
from workflow_traces.exporters.rest.cloudwatch_http import CloudWatchTarget

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


def _send_all(moto_url: str, records: list[Record], stream: str) -> list[bytes]:
    """Encode and send ``records`` with the real target; the PutLogEvents bodies it sent."""
    sent: list[bytes] = []

    def capture(request: httpx.Request) -> None:
        if request.headers.get("x-amz-target", "").endswith(".PutLogEvents"):
            sent.append(request.read())

    creds = (AWS["aws_access_key_id"], AWS["aws_secret_access_key"], None)
    target = CloudWatchTarget(moto_url, "us-east-1", "wt-splits", stream, creds)
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


def test_count_split_on_small_records_read_back_through_boto3(moto_url: str) -> None:
    base = time.time_ns() - 60 * 10**9
    run = "run-count-split"
    records = [_record(".", base + i * 1000, run) for i in range(25_000)]
    # Progress ticks in a stream per run and host: 104 bytes an event as CloudWatch counts it
    # (77 of them the level, the record_id and the JSON around them), so the 10,000-events limit
    # comes before the 1,048,576 bytes.
    template = "{run_id}/{host}"
    cost = len(cw.cloudwatch_message(records[0], log_stream=template)) + 26
    assert cost * cw.CLOUDWATCH_MAX_EVENTS <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    sent = _send_all(moto_url, list(reversed(records)), template)
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


def test_byte_split_on_large_records_read_back_through_boto3(moto_url: str) -> None:
    base = time.time_ns() - 60 * 10**9
    run = "run-byte-split"
    records = [_record(f"{i:03d}" + "x" * 100_000, base + i * 10**6, run) for i in range(25)]
    sent = _send_all(moto_url, records, "{run_id}-{host}")
    counts = [len(_events_of(body)) for body in sent]
    assert counts == [10, 10, 5]  # 10 x 100 KB fit in 1,048,576 bytes; 11 do not
    for body in sent:
        assert _batch_size(_events_of(body)) <= cw.CLOUDWATCH_MAX_BATCH_BYTES
    events = _read_back(moto_url, "run-byte-split-ip-10-0-0-1")
    got = [orjson.loads(e["message"]) for e in events]
    assert [g["record_id"] for g in got] == [r.record_id for r in records]
    assert [g["message"] for g in got] == [r.message for r in records]  # nothing cut
    assert [e["timestamp"] for e in events] == [r.time_ns // 1_000_000 for r in records]
    assert all("host" not in g and "run_id" not in g for g in got)  # both name the stream


def test_a_large_message_keeps_what_the_event_limit_allows(moto_url: str) -> None:
    run = "run-large"
    text = "".join(chr(0x61 + i % 26) for i in range(300_000))  # 300 KB
    (rec,) = [_record(text, time.time_ns(), run)]
    (body,) = _send_all(moto_url, [rec], "{run_id}")
    (event,) = _events_of(body)
    size = len(event["message"].encode()) + cw.CLOUDWATCH_EVENT_OVERHEAD
    assert size <= cw.CLOUDWATCH_MAX_EVENT_BYTES
    (back,) = _read_back(moto_url, run)
    got = orjson.loads(back["message"])
    assert got["truncated"] is True
    kept = got["message"].removesuffix("...[truncated]")
    assert text.startswith(kept)
    # All of the 256 KB but the event's other fields and the mark: not a quarter of it.
    assert len(kept) > cw.CLOUDWATCH_MAX_EVENT_BYTES - 200
