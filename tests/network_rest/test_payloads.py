"""Each REST encoder's payload, sent by a real RestAPIHandler to a real HTTP receiver on
127.0.0.1 (or moto's CloudWatch server), checked against the service's documented shape."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import orjson
import pytest
from conformance import datadog_items, otlp_request
from rest_helpers import AWS, FAST, logs_client, messages

from workflow_traces.core.record import Record, new_record_id
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.rest import cloudwatch as cw
from workflow_traces.exporters.rest import datadog as dd
from workflow_traces.exporters.rest import otlp
from workflow_traces.exporters.rest.generic import encode_generic
from workflow_traces.exporters.rest.loki import encode_loki
from workflow_traces.exporters.rest.otlp import encode_otlp
from workflow_traces.settings.config import validate_handler

pytestmark = pytest.mark.network


def _log_some(logger: logging.Logger, n: int) -> None:
    for i in range(n):
        logger.info("m%d", i, extra={"workflow_name": "etl", "job_name": "load", "customer": i})
    try:
        raise ValueError("bad row")
    except ValueError:
        logger.exception("failed")


@pytest.fixture
def custom_levels() -> Any:
    """Level names 25 and 45 registered with logging for one test, removed after it."""
    added = {25: "NOTICE25", 45: "SEVERE"}
    for number, name in added.items():
        logging.addLevelName(number, name)
    yield added
    for number, name in added.items():
        logging._levelToName.pop(number, None)
        logging._nameToLevel.pop(name, None)


def _record(message: str = "x", t_ns: int | None = None, **kw: Any) -> Record:
    return Record(
        time_ns=time.time_ns() if t_ns is None else t_ns,
        level="INFO",
        levelno=20,
        message=message,
        run_id="r1",
        parent_run_id=None,
        workflow_name="etl",
        job_name=None,
        stage_name=None,
        filename=None,
        lineno=None,
        func_name=None,
        process=1,
        thread=1,
        host="h",
        record_id=new_record_id(),
        **kw,
    )


# -- Datadog ---------------------------------------------------------------------------------------
def test_datadog_payload(receivers: Any, sinks: Any) -> None:
    receiver = receivers("datadog", api_key="dd-secret")
    handler, logger = sinks(
        run_id="run-dd",
        parent_run_id="parent-1",
        api_url=receiver.base_url,  # a bare host gets /api/v2/logs
        api_key="dd-secret",
        service_type="datadog",
        service="billing",
        labels={"team": "data"},
        extras={"environment": "prod", "workflow_name": "etl"},
        **FAST,
    )
    _log_some(logger, 20)
    handler.flush(10)
    assert receiver.wait_for(21)
    req = receiver.accepted()[0]
    assert req.path == "/api/v2/logs"
    assert req.headers["dd-api-key"] == "dd-secret"
    assert req.headers["content-encoding"] == "gzip"  # gzip is recommended by Datadog
    assert req.headers["content-type"] == "application/json"
    assert isinstance(req.json(), list)
    entries = receiver.records()
    assert sorted(messages(receiver)) == sorted([f"m{i}" for i in range(20)] + ["failed"])
    first = entries[0]
    assert first["status"] == "info"
    assert first["service"] == "billing"
    assert first["ddsource"] == "workflow-traces"
    assert first["hostname"]
    assert set(first["ddtags"].split(",")) == {"env:prod", "team:data", "workflow:etl"}
    assert first["run_id"] == "run-dd" and first["parent_run_id"] == "parent-1"
    assert first["workflow_name"] == "etl" and first["job_name"] == "load"
    assert first["extras"]["customer"] == 0
    assert isinstance(first["timestamp"], int)
    error = next(e for e in entries if e["message"] == "failed")
    assert error["status"] == "error"
    assert error["error"]["kind"] == "ValueError" and "bad row" in error["error"]["stack"]
    assert all(r.status == 202 for r in receiver.requests)


def test_datadog_status_is_a_standard_one_and_tags_are_normalized(
    receivers: Any, sinks: Any, custom_levels: Any
) -> None:
    receiver = receivers("datadog", api_key="k")
    handler, logger = sinks(
        api_url=receiver.base_url,
        api_key="k",
        service_type="datadog",
        labels={"Team": "Data Eng", "owner": "a,b"},
        extras={"environment": "Prod EU", "workflow_name": "Nightly ETL #2"},
        **FAST,
    )
    for level in (10, 20, 25, 26, 30, 40, 45, 50, 60):
        logger.log(level, "at %d", level)
    handler.flush(10)
    assert receiver.wait_for(9)
    (req,) = receiver.accepted()
    items = datadog_items(req.body)  # datadog-api-client's models take the body
    assert len(items) == 9
    status = {e["message"]: e["status"] for e in req.json()}
    assert [dd.datadog_status(n) for n in (0, 5, 14)] == ["debug"] * 3
    assert status == {
        "at 10": "debug",
        "at 20": "info",
        "at 25": "info",  # a tie goes to the lower level
        "at 26": "warning",
        "at 30": "warning",
        "at 40": "error",
        "at 45": "error",
        "at 50": "critical",
        "at 60": "critical",
    }
    tags = {e["ddtags"] for e in req.json()}
    assert tags == {"env:prod_eu,team:data_eng,owner:a_b,workflow:nightly_etl_2"}
    assert {item.ddtags for item in items} == tags


@pytest.mark.parametrize(
    ("tag", "normalized"),
    [
        ("workflow:Nightly ETL #2", "workflow:nightly_etl_2"),  # lowercase, "_" for others, runs
        ("env:prod__", "env:prod"),  # a trailing "_" goes
        ("9lives:x", "lives:x"),  # a letter first
        ("path:a/b-c.d:e", "path:a/b-c.d:e"),  # allowed as they are
        ("k:Grüße 日本", "k:grüße_日本"),  # Unicode letters are kept
        ("key:", "key"),  # a tag cannot end with a colon
        ("t:" + "v" * 300, "t:" + "v" * 198),  # at most 200 characters
    ],
)
def test_datadog_tag_normalization(tag: str, normalized: str) -> None:
    assert dd.normalize_tag(tag) == normalized
    assert len(dd.normalize_tag(tag)) <= dd.DATADOG_MAX_TAG_LENGTH


def test_datadog_limits_entries_payload_and_truncation() -> None:
    batch = [_record(f"m{i}") for i in range(2500)]
    requests = dd.encode_datadog(batch, "svc", "")
    assert [len(r.records) for r in requests] == [1000, 1000, 500]  # at most 1,000 entries
    assert [len(orjson.loads(r.body)) for r in requests] == [1000, 1000, 500]

    big = [_record("y" * 600_000) for _ in range(20)]  # 12 MB in all
    requests = dd.encode_datadog(big, "svc", "")
    assert sum(len(r.records) for r in requests) == 20
    assert all(len(r.body) <= dd.DATADOG_MAX_PAYLOAD_BYTES for r in requests)

    huge = _record("z" * 3_000_000)
    (request,) = dd.encode_datadog([huge], "svc", "")
    datadog_items(request.body)
    (entry,) = orjson.loads(request.body)
    assert len(request.body) <= dd.DATADOG_MAX_ENTRY_BYTES
    assert entry["truncated"] is True
    assert entry["message"].endswith("...[truncated]")


# -- Grafana Loki ----------------------------------------------------------------------------------
def test_loki_payload(receivers: Any, sinks: Any) -> None:
    receiver = receivers("grafana", api_key="token-1")
    handler, logger = sinks(
        api_url=receiver.base_url,
        service_type="grafana",
        username="12345",  # Grafana Cloud: user id + token as basic auth
        api_key="token-1",
        org_id="tenant-a",
        labels={"cluster": "eu1"},
        extras={"environment": "staging"},
        **FAST,
    )
    _log_some(logger, 30)
    handler.flush(10)
    assert receiver.wait_for(31)
    req = receiver.accepted()[0]
    assert req.path == "/loki/api/v1/push"
    assert req.status == 204
    assert req.headers["x-scope-orgid"] == "tenant-a"
    assert req.headers["authorization"].startswith("Basic ")
    assert req.headers["content-encoding"] == "gzip"
    body = req.json()
    for stream in body["streams"]:
        # Few, low-cardinality labels; no run ids.
        assert set(stream["stream"]) <= {"service", "environment", "workflow", "level", "cluster"}
        assert stream["stream"]["service"] == "workflow-traces"
        assert stream["stream"]["environment"] == "staging"
        stamps = [int(v[0]) for v in stream["values"]]
        assert stamps == sorted(stamps)
    records = receiver.records()
    assert {r["labels"]["level"] for r in records} == {"info", "error"}
    assert all(r["metadata"]["run_id"] == handler.run_id for r in records)
    logs = [r for r in records if not r["line"].startswith("failed")]
    assert all(r["metadata"]["job_name"] == "load" for r in logs)
    assert len({r["metadata"]["record_id"] for r in records}) == 31
    failed = next(r for r in records if r["line"].startswith("failed"))
    assert "ValueError: bad row" in failed["line"]
    assert failed["metadata"]["exc_type"] == "ValueError"


def test_loki_bearer_token(receivers: Any, sinks: Any) -> None:
    receiver = receivers("grafana", api_key="glc-token")
    handler, logger = sinks(
        api_url=receiver.url, service_type="grafana", api_key="glc-token", **FAST
    )
    logger.info("hello")
    handler.flush(10)
    (req,) = receiver.accepted()
    assert req.headers["authorization"] == "Bearer glc-token"
    assert "x-scope-orgid" not in req.headers


def test_loki_size_bound() -> None:
    recs = [_record("a" * 1000) for _ in range(3000)]
    requests = encode_loki(recs, {"service": "s"}, max_bytes=500_000)
    assert sum(len(r.records) for r in requests) == 3000
    assert all(len(r.body) <= 500_000 for r in requests)
    long = encode_loki([_record("b" * 400_000)], {"service": "s"})
    (value,) = orjson.loads(long[0].body)["streams"][0]["values"]
    assert len(value[1].encode()) <= 256 * 1024 and value[1].endswith("...[truncated]")


# -- OTLP ------------------------------------------------------------------------------------------
def test_otlp_payload(receivers: Any, sinks: Any) -> None:
    receiver = receivers("otlp")
    handler, logger = sinks(
        api_url=receiver.base_url,  # a bare host gets /v1/logs
        service_type="generic",
        format="otlp",
        service="etl-service",
        **FAST,
    )
    _log_some(logger, 10)
    handler.flush(10)
    assert receiver.wait_for(11)
    req = receiver.accepted()[0]
    assert req.path == "/v1/logs"
    assert req.headers["content-type"] == "application/json"
    body = req.json()
    scope_logs = body["resourceLogs"][0]["scopeLogs"][0]
    assert scope_logs["scope"]["name"] == "workflow_traces"
    log = scope_logs["logRecords"][0]
    assert set(log) >= {"timeUnixNano", "severityNumber", "severityText", "body", "attributes"}
    assert log["timeUnixNano"].isdigit()  # 64-bit integers are decimal strings in OTLP/JSON
    records = receiver.records()
    assert records[0]["resource"]["service.name"] == "etl-service"
    assert {r["severityNumber"] for r in records} == {9, 17}  # INFO, ERROR
    assert all(r["attrs"]["run_id"] == handler.run_id for r in records)
    assert records[0]["attrs"]["extras.customer"] == 0
    failed = next(r for r in records if r["body"]["stringValue"] == "failed")
    assert failed["attrs"]["exception.type"] == "ValueError"
    for request in receiver.accepted():  # opentelemetry-proto's own messages take every body
        parsed = otlp_request(request.body)
        assert sum(len(s.log_records) for r in parsed.resource_logs for s in r.scope_logs) == len(
            request.records
        )


def test_otlp_special_floats_custom_levels_and_dotted_names(
    receivers: Any, sinks: Any, custom_levels: Any
) -> None:
    receiver = receivers("otlp")
    handler, logger = sinks(
        api_url=receiver.base_url,
        service_type="generic",
        format="otlp",
        labels={"deployment.environment": "prod", "service.namespace": "data"},
        **FAST,
    )
    nan, inf = float("nan"), float("inf")
    logger.info("floats", extra={"a": nan, "b": inf, "c": -inf, "d": 1.5, "e": [nan], "f": 2**70})
    for level in (15, 25, 35, 45, 55, 70):
        logger.log(level, "at %d", level)
    handler.flush(10)
    assert receiver.wait_for(7)
    assert [otlp.severity_number(n) for n in (0, 5, 9)] == [1, 3, 5]  # TRACE, TRACE3, DEBUG
    parsed = [otlp_request(r.body) for r in receiver.accepted()]
    logs = [
        log for p in parsed for r in p.resource_logs for s in r.scope_logs for log in s.log_records
    ]
    resource = {a.key: a.value.string_value for a in parsed[0].resource_logs[0].resource.attributes}
    assert resource["deployment.environment"] == "prod" and resource["service.namespace"] == "data"
    floats = next(log for log in logs if log.body.string_value == "floats")
    attrs = {a.key: a.value for a in floats.attributes}
    assert math.isnan(attrs["extras.a"].double_value)  # NaN, not lost
    assert attrs["extras.b"].double_value == inf and attrs["extras.c"].double_value == -inf
    assert attrs["extras.d"].double_value == 1.5
    assert math.isnan(attrs["extras.e"].array_value.values[0].double_value)  # inside an array
    assert attrs["extras.f"].string_value == str(2**70)  # beyond int64: its text
    raw = next(
        log
        for r in receiver.accepted()
        for log in r.json()["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        if log["body"]["stringValue"] == "floats"
    )
    values = {a["key"]: a["value"] for a in raw["attributes"]}
    assert values["extras.a"] == {"doubleValue": "NaN"}
    assert values["extras.b"] == {"doubleValue": "Infinity"}
    assert values["extras.c"] == {"doubleValue": "-Infinity"}
    severity = {
        log.body.string_value: (log.severity_number, log.severity_text)
        for log in logs
        if log.body.string_value.startswith("at ")
    }
    assert severity == {
        "at 15": (7, "Level 15"),  # DEBUG3
        "at 25": (11, "NOTICE25"),  # INFO3, between INFO 9 and WARN 13; the level's name
        "at 35": (15, "Level 35"),  # WARN3
        "at 45": (19, "SEVERE"),  # ERROR3
        "at 55": (23, "Level 55"),  # FATAL3
        "at 70": (24, "Level 70"),  # FATAL4, the highest
    }


def test_otlp_encoder_bodies_parse_strictly() -> None:
    recs = [
        _record(f"m{i}", extras={"n": i, "x": {"deep": [1, "a", None, True]}}) for i in range(50)
    ]
    recs.append(
        _record(
            "event",
            kind="event",
            scope="workflow",
            event="succeeded",
            status="ok",
            duration=float("inf"),
        )
    )
    for request in encode_otlp(recs, "svc", {"service.namespace": "ns"}, max_bytes=4000):
        otlp_request(request.body)


@pytest.mark.parametrize(
    ("service", "fmt", "name", "ok"),
    [
        ("generic", "otlp", "deployment.environment", True),
        ("generic", "otlp", "service.namespace", True),
        ("generic", "otlp", "team", True),
        ("generic", "otlp", "a..b", False),
        ("generic", "otlp", "has space", False),
        ("grafana", "json", "deployment.environment", False),  # Loki keeps its label names
        ("grafana", "json", "cluster_1", True),
        ("datadog", "json", "team", True),
        ("datadog", "json", "1team", False),
    ],
)
def test_label_names_follow_each_format(service: str, fmt: str, name: str, ok: bool) -> None:
    data = {
        "type": "restapi",
        "service_type": service,
        "format": fmt,
        "api_url": "http://h",
        "labels": {name: "v"},
    }
    if ok:
        assert validate_handler(data).labels == {name: "v"}  # type: ignore[attr-defined]
    else:
        with pytest.raises(ConfigError, match=rf"labels: .*{name.split()[0]}"):
            validate_handler(data)


# -- generic ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_generic_payload(fmt: str, receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", api_key="k")
    handler, logger = sinks(
        api_url=receiver.url, api_key="k", service_type="generic", format=fmt, **FAST
    )
    _log_some(logger, 15)
    handler.flush(10)
    assert receiver.wait_for(16)
    req = receiver.accepted()[0]
    assert req.headers["authorization"] == "Bearer k"
    expected = "application/json" if fmt == "json" else "application/x-ndjson"
    assert req.headers["content-type"] == expected
    assert "content-encoding" not in req.headers  # generic endpoints get plain bodies by default
    if fmt == "json":
        assert isinstance(req.json(), list)
    else:
        assert len(req.body.splitlines()) == len(req.records)
    records = receiver.records()
    assert sorted(messages(receiver)) == sorted([f"m{i}" for i in range(15)] + ["failed"])
    assert {"timestamp", "level", "run_id", "record_id", "workflow_name"} <= set(records[0])


def test_generic_gzip_when_asked(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic")
    handler, logger = sinks(api_url=receiver.url, gzip=True, **FAST)
    logger.info("zipped")
    handler.flush(10)
    assert receiver.wait_for(1)
    assert receiver.accepted()[0].headers["content-encoding"] == "gzip"
    assert messages(receiver) == ["zipped"]
    assert encode_generic([_record("a")], "ndjson")[0].body.endswith(b"\n")


# -- CloudWatch (moto) -----------------------------------------------------------------------------
def test_cloudwatch_put_log_events(moto_url: str, sinks: Any) -> None:
    handler, logger = sinks(
        run_id="run-cw",
        api_url=moto_url,
        service_type="cloudwatch",
        log_group="wt-tests",
        cloudwatch_format="json",
        **AWS,
        **FAST,
    )
    _log_some(logger, 25)
    handler.flush(15)
    assert handler.health().written == 26, handler.health()
    client = logs_client(moto_url)
    events = client.get_log_events(
        logGroupName="wt-tests", logStreamName="run-cw", startFromHead=True
    )["events"]
    bodies = [orjson.loads(e["message"]) for e in events]
    assert sorted(b["message"] for b in bodies) == sorted([f"m{i}" for i in range(25)] + ["failed"])
    assert all("run_id" not in b for b in bodies)  # the stream's name, "{run_id}" by default
    assert all(b["host"] and len(b["record_id"]) > 16 for b in bodies)
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    failed = next(b for b in bodies if b["message"] == "failed")
    assert failed["exc_type"] == "ValueError"

    # A second sink on the same group and stream: "already exists" is success.
    again, logger2 = sinks(
        run_id="run-cw",
        api_url=moto_url,
        service_type="cloudwatch",
        log_group="wt-tests",
        **AWS,
        **FAST,
    )
    logger2.info("second sink")
    again.flush(15)
    assert again.health().written == 1 and again.health().failed == 0
    events = client.get_log_events(
        logGroupName="wt-tests", logStreamName="run-cw", startFromHead=True
    )["events"]
    assert len(events) == 27
    # The second sink has the default format: a text line (level, host, job, stage, logger,
    # source, message).
    (line,) = [e["message"] for e in events if e["message"].endswith(" second sink")]
    level, host, job, stage, logger_name, source, text = line.split(" ", 6)
    assert (level, job, stage, text) == ("INFO", "-", "-", "second sink")
    assert host == bodies[0]["host"] and logger_name == logger2.name
    assert source.startswith("test_payloads.py:")


def test_cloudwatch_batches_follow_the_limits() -> None:
    base = 1_700_000_000_000_000_000
    many = [_record(f"e{i}", base + i) for i in range(25_000)]
    requests = cw.encode_cloudwatch(list(reversed(many)), "g", "{run_id}")
    assert all(len(r.records) <= cw.CLOUDWATCH_MAX_EVENTS for r in requests)
    assert sum(len(r.records) for r in requests) == 25_000
    for request in requests:
        body = orjson.loads(request.body)
        stamps = [e["timestamp"] for e in body["logEvents"]]
        assert stamps == sorted(stamps)  # chronological within a batch
        size = sum(len(e["message"].encode()) + 26 for e in body["logEvents"])
        assert size <= cw.CLOUDWATCH_MAX_BATCH_BYTES

    bulky = [_record("x" * 100_000, base + i) for i in range(30)]
    requests = cw.encode_cloudwatch(bulky, "g", "{run_id}")
    for request in requests:
        events = orjson.loads(request.body)["logEvents"]
        assert sum(len(e["message"].encode()) + 26 for e in events) <= 1_048_576

    hour_ns = 3600 * 10**9
    spread = [_record(f"t{i}", base + i * 10 * hour_ns) for i in range(6)]  # 50 hours
    requests = cw.encode_cloudwatch(spread, "g", "{run_id}")
    for request in requests:
        stamps = [e["timestamp"] for e in orjson.loads(request.body)["logEvents"]]
        assert stamps[-1] - stamps[0] <= cw.CLOUDWATCH_MAX_SPAN_MS
    assert len(requests) == 2  # 0-20 h, then 30-50 h

    for fmt in ("text", "json"):
        big = [_record("y" * 400_000)]
        (one,) = cw.encode_cloudwatch(big, "g", "s-{host}:{process}", fmt=fmt)
        assert one.key == "s-h_1"  # ":" is not allowed in stream names
        (event,) = orjson.loads(one.body)["logEvents"]
        assert len(event["message"].encode()) + 26 <= cw.CLOUDWATCH_MAX_EVENT_BYTES
        if fmt == "json":
            assert orjson.loads(event["message"])["truncated"] is True
        else:
            assert event["message"].endswith("yyy...[truncated]")


def test_cloudwatch_against_the_local_receiver(receivers: Any, sinks: Any) -> None:
    receiver = receivers("cloudwatch")
    config = {"api_url": receiver.url, "service_type": "cloudwatch", **AWS, **FAST}
    first, logger = sinks(run_id="run-lr", **config)
    _log_some(logger, 5)
    first.flush(10)
    second, logger2 = sinks(run_id="run-lr", **config)  # group and stream exist already
    logger2.info("again")
    second.flush(10)
    assert first.health().failed == 0 and second.health().failed == 0
    targets = [r.headers["x-amz-target"] for r in receiver.requests]
    assert targets.count("Logs_20140328.CreateLogGroup") == 2
    assert [
        r.status for r in receiver.requests if r.headers["x-amz-target"].endswith("Stream")
    ] == [
        200,
        400,  # ResourceAlreadyExistsException, taken as success
    ]
    assert all(r.headers["authorization"].startswith("AWS4-HMAC-SHA256") for r in receiver.requests)
    assert "content-encoding" not in receiver.requests[-1].headers
    # Text events (the default): the message follows level, host, job, stage, logger, source.
    lines = [str(r["message"]).split("\n", 1)[0].split(" ", 6) for r in receiver.records()]
    assert sorted(line[6] for line in lines) == sorted(
        [f"m{i}" for i in range(5)] + ["failed", "again"]
    )
    assert {line[0] for line in lines} == {"INFO", "ERROR"}
