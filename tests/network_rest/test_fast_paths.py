"""The encoders' fast path (a template per record context, filled in per record) must give the
very bytes of the full encoding (a dict per record, serialized), whatever changes between
records; and the LocalReceiver's lean mode (used by the benchmark) must count what arrives."""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
import pytest
from conformance import datadog_items, otlp_request
from rest_helpers import AWS, FAST, service_kwargs

from workflow_traces.core.record import Record, new_record_id
from workflow_traces.exporters.encode import dumps, record_to_dict
from workflow_traces.exporters.rest import cloudwatch as cw
from workflow_traces.exporters.rest import datadog as dd
from workflow_traces.exporters.rest import generic as generic
from workflow_traces.exporters.rest import loki as loki
from workflow_traces.exporters.rest import otlp as otlp
from workflow_traces.exporters.rest.payload import Request

_SHARED = {"team": "data", "n": 1.5, "odd": [1, None, {"z": True}]}
_MESSAGES = [
    "plain",
    'with "quotes"',
    "back\\slash",
    "tab\tnew\nline",
    "é ü 中 🙂",
    "bad \udcff surrogate",
    "",
    "\x7f delete \x01 control",
    "</script>",
    "x" * 5000,
]


def _records(seed: int) -> list[Record]:
    """Runs of log lines sharing a context, mixed with everything that leaves the fast path."""
    rnd = random.Random(seed)
    base = Record(
        time.time_ns(), "INFO", 20, "m", "run", None, "wf", None, None, "/a.py", 1, "f", 1, 2,
        "host", "id-0", logger="app",
    )  # fmt: skip
    out = []
    for i in range(600):
        kind = "event" if i % 17 == 0 else "log"
        out.append(
            base._replace(
                time_ns=base.time_ns + i * 7919 + rnd.randrange(10**9),
                message=rnd.choice(_MESSAGES) + (str(i) if i % 2 else ""),
                record_id=rnd.choice([new_record_id(), f'odd "{i}"', "\udcfe"]),
                level=rnd.choice(["INFO", "ERROR", "Custom"]),
                levelno=rnd.choice([20, 40, 25]),
                parent_run_id=rnd.choice([None, "p"]),
                workflow_name=rnd.choice([None, "wf", "w,x"]),
                job_name=rnd.choice([None, "job"]),
                filename=rnd.choice([None, "/a.py"]),
                lineno=rnd.choice([None, 1, 2]),
                thread=rnd.choice([2, 3]),
                host=rnd.choice(["host", "h2"]),
                extras=rnd.choice([None, _SHARED, _SHARED, {"fresh": [i]}]),
                exc_type="ValueError" if i % 11 == 0 else None,
                exc_traceback="Traceback...\n  line" if i % 13 == 0 else None,
                kind=kind,
                scope="job" if kind == "event" else None,
                event="started" if kind == "event" else None,
                status="running" if kind == "event" else None,
                duration=1.5 if kind == "event" else None,
            )
        )
    out.append(base._replace(message="y" * 300_000))  # cut by the services' line limits
    return out


def _array(parts: list[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"


def _records_of(requests: list[Request]) -> list[Record]:
    return [rec for req in requests for rec in req.records]


def _templates(contexts: Any) -> int:
    """How many record contexts have a template (so the fast path was taken)."""
    return sum(1 for _, found in contexts._cache.values() if found is not None)


@pytest.mark.parametrize("seed", [1, 2])
def test_datadog_fast_path_gives_the_full_encoding(seed: int) -> None:
    batch = _records(seed)
    for _ in range(2):  # the second time, every context's template is made already
        requests = dd.encode_datadog(batch, "svc", "env:x")
        assert _records_of(requests) == batch
        for req in requests:
            expected = [
                dd._encoded(dd.datadog_entry(r, "svc", "env:x"), 1_000_000) for r in req.records
            ]
            assert req.body == _array(expected)
            datadog_items(req.body)  # datadog-api-client's models take it
    assert _templates(dd._contexts["svc", "env:x"]) > 10


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_generic_fast_path_gives_the_full_encoding(fmt: str) -> None:
    batch = _records(3)
    for _ in range(2):
        requests = generic.encode_generic(batch, fmt, max_bytes=200_000)
        assert len(requests) > 1 and _records_of(requests) == batch
        for req in requests:
            expected = [dumps(record_to_dict(r)) for r in req.records]
            joined = b"\n".join(expected) + b"\n" if fmt == "ndjson" else _array(expected)
            assert req.body == joined
    assert _templates(generic._contexts) > 10


def test_loki_fast_path_gives_the_full_encoding() -> None:
    batch = _records(4)
    base = {"service": "svc"}
    for _ in range(2):
        requests = loki.encode_loki(batch, base, max_bytes=100_000)
        assert len(requests) > 1
        assert sorted(r.record_id for r in _records_of(requests)) == sorted(
            r.record_id for r in batch
        )
        for req in requests:
            streams: dict[bytes, list[bytes]] = {}
            for rec in req.records:  # already in time order
                labels = dumps(loki.loki_labels(rec, base))
                streams.setdefault(labels, []).append(dumps(loki.loki_value(rec)))
            parts = [
                b'{"stream":' + k + b',"values":' + _array(v) + b"}" for k, v in streams.items()
            ]
            assert req.body == b'{"streams":' + _array(parts) + b"}"
    assert _templates(loki._contexts) > 10


def test_otlp_fast_path_gives_the_full_encoding() -> None:
    batch = _records(5)
    for _ in range(2):
        requests = otlp.encode_otlp(batch, "svc", {"team": "data"}, max_bytes=200_000)
        assert len(requests) > 1
        for req in requests:
            body = orjson.loads(req.body)
            (resource_logs,) = body["resourceLogs"]
            logs = resource_logs["scopeLogs"][0]["logRecords"]
            observed = logs[0]["observedTimeUnixNano"]
            expected = [dumps(otlp.otlp_log_record(r, observed)) for r in req.records]
            assert req.body.endswith(b'"logRecords":' + _array(expected) + b"}]}]}")
            otlp_request(req.body)  # opentelemetry-proto parses it strictly
    assert _templates(otlp._contexts) > 10


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_cloudwatch_fast_path_gives_the_full_encoding(fmt: cw.CloudWatchFormat) -> None:
    batch = _records(6)
    limit = cw.CLOUDWATCH_MAX_EVENT_BYTES - cw.CLOUDWATCH_EVENT_OVERHEAD
    full = cw.cloudwatch_message if fmt == "json" else cw.cloudwatch_text
    for _ in range(2):
        requests = cw.encode_cloudwatch(
            batch, "group", "{run_id}-{host}", fmt=fmt, max_bytes=150_000
        )
        assert len(requests) > 2
        for req in requests:
            events = [
                {
                    "timestamp": r.time_ns // 1_000_000,
                    "message": full(r, limit, "{run_id}-{host}"),
                }
                for r in req.records
            ]
            expected = {"logGroupName": "group", "logStreamName": req.key, "logEvents": events}
            assert req.body == dumps(expected)
    if fmt == "json":
        assert _templates(cw._contexts["{run_id}-{host}"]) > 10


@pytest.mark.network
@pytest.mark.parametrize("service", ["datadog", "grafana", "generic", "otlp", "cloudwatch"])
def test_lean_receiver_counts_what_arrives(service: str, receivers: Any, sinks: Any) -> None:
    receiver = receivers(service, lean=True)
    keys = {**AWS} if service == "cloudwatch" else {"api_key": "k"}
    handler, logger = sinks(
        api_url=receiver.url, **service_kwargs(service), **keys, **FAST, buffer_size=100
    )
    for i in range(250):
        logger.info('line "%d" with "record_id": in it', i)
    handler.flush(10)
    assert receiver.accepted_records == 250
    assert receiver.records() == [] and receiver.record_ids() == []  # counted, not kept
    assert handler.health().written == 250
