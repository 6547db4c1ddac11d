"""The OTLP sink sends a span per scope to /v1/traces when ``signals`` include traces: start
and end, kind, attributes, parent links, error status with an exception event. Every body
parses strictly with opentelemetry-proto's ExportTraceServiceRequest (and the log bodies with
ExportLogsServiceRequest). A real HTTP server on 127.0.0.1 receives them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from otlp_receiver import OtlpReceiver
from workflow_traces.integrations.plain import job, stage, workflow

from workflow_traces import ConfigError, get_trace

sys.path.insert(0, str(Path(__file__).parents[1] / "network_rest"))
from conformance import otlp_request


def otlp_traces_request(body: bytes) -> object:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    return json_format.Parse(body, ExportTraceServiceRequest())


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


def _sink(url: str, signals: list[str]) -> dict[str, object]:
    handler = {
        "type": "restapi",
        "service_type": "generic",
        "format": "otlp",
        "api_url": url,
        "signals": signals,
        "flush_interval": 0.05,
    }
    return {"trace_type": "multi", "handlers": [handler], "fail_silently": False}


def test_each_scope_is_one_span_with_its_parent_and_status(collector: OtlpReceiver) -> None:
    with workflow("etl", run_id="span-run", **_sink(collector.url, ["logs", "traces"])) as wf:
        wf.info("starting")
        with job("load"):
            with stage("ok") as st:
                st.info("fine")
            with pytest.raises(ValueError), stage("bad"):
                raise ValueError("broken row")
    for body in collector.bodies("/v1/traces"):
        otlp_traces_request(body)
    for body in collector.bodies("/v1/logs"):
        otlp_request(body)
    spans = {s["name"]: s for s in collector.spans()}
    assert sorted(spans) == ["job load", "stage bad", "stage ok", "workflow etl"]
    wf_span, job_span = spans["workflow etl"], spans["job load"]
    assert len({s["traceId"] for s in spans.values()}) == 1
    assert "parentSpanId" not in wf_span
    assert job_span["parentSpanId"] == wf_span["spanId"]
    assert (
        spans["stage ok"]["parentSpanId"]
        == spans["stage bad"]["parentSpanId"]
        == (job_span["spanId"])
    )
    for span in spans.values():
        assert span["kind"] == 1
        assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
    assert int(wf_span["startTimeUnixNano"]) <= int(job_span["startTimeUnixNano"])
    attrs = {a["key"]: a["value"] for a in spans["stage ok"]["attributes"]}
    assert attrs["run_id"] == {"stringValue": "span-run"}
    assert attrs["workflow_name"] == {"stringValue": "etl"}
    assert attrs["job_name"] == {"stringValue": "load"}
    assert attrs["stage_name"] == {"stringValue": "ok"}
    assert spans["stage ok"]["status"] == {"code": 1}
    bad = spans["stage bad"]
    assert bad["status"] == {"code": 2, "message": "broken row"}
    (event,) = bad["events"]
    ev_attrs = {a["key"]: a["value"]["stringValue"] for a in event["attributes"]}
    assert event["name"] == "exception"
    assert ev_attrs["exception.type"] == "ValueError"
    assert ev_attrs["exception.message"] == "broken row"
    assert "ValueError: broken row" in ev_attrs["exception.stacktrace"]
    # The log lines carry the span of their scope.
    logs = {log["body"]["stringValue"]: log for log in collector.logs()}
    assert logs["fine"]["spanId"] == spans["stage ok"]["spanId"]
    assert logs["starting"]["spanId"] == wf_span["spanId"]
    assert logs["fine"]["traceId"] == wf_span["traceId"]


def test_traces_alone_send_no_logs_and_open_scopes_send_nothing(collector: OtlpReceiver) -> None:
    with workflow("only-spans", **_sink(collector.url, ["traces"])) as wf:
        wf.info("not sent: logs are not among the signals")
        with stage("done"):
            pass
        wf.flush()
        # The workflow is still open: only the finished stage's span is out.
        assert [s["name"] for s in collector.spans()] == ["stage done"]
    assert collector.bodies("/v1/logs") == []
    assert sorted(s["name"] for s in collector.spans()) == ["stage done", "workflow only-spans"]


def test_traces_need_the_otlp_format() -> None:
    bad = {
        "trace_type": "multi",
        "handlers": [
            {
                "type": "restapi",
                "format": "json",
                "api_url": "http://127.0.0.1:9/x",
                "signals": ["traces"],
            }
        ],
    }
    with pytest.raises(ConfigError, match=r"signals.*only with format otlp"):
        get_trace("r", extras=bad)
