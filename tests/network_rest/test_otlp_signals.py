"""An OTLP sink with ``signals: ["logs", "traces"]`` retries each signal on its own: when one of
a batch's requests fails (503) and the other went through, the retry sends only what did not
arrive, so a real HTTP server on 127.0.0.1 gets every log record exactly once on /v1/logs and
every span exactly once on /v1/traces (counted by record id and by span id). Every body parses
strictly with opentelemetry-proto."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from conformance import otlp_request
from local_services import LocalReceiver
from workflow_traces.integrations.plain import job, stage, workflow

STAGES = 5
LINES = 20


def otlp_traces_request(body: bytes) -> Any:
    """``body`` parsed strictly as an OTLP ``ExportTraceServiceRequest``."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    return json_format.Parse(body, ExportTraceServiceRequest())


class TwoSignalReceiver(LocalReceiver):
    """LocalReceiver("otlp") that also takes OTLP spans (bodies of ``resourceSpans``, sent to
    /v1/traces; the receiver's logs decoder would refuse them) and fails requests of one signal
    with 503: ``fail`` maps "logs" or "traces" to how many of its requests fail, each one a
    request that comes right after an accepted request of the other signal (so that the
    failure falls between the two signals' requests for one batch)."""

    def __init__(self, fail: dict[str, int]) -> None:
        self.fail = Counter(fail)
        self.last_accepted: str | None = None
        super().__init__("otlp")

    def _decide(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[dict[str, Any]] | int, bytes | None]:
        signal = "traces" if body.startswith(b'{"resourceSpans"') else "logs"
        other = "logs" if signal == "traces" else "traces"
        with self._lock:
            failing = self.last_accepted == other and self.fail[signal] > 0
            if failing:
                self.fail[signal] -= 1
            else:
                self.last_accepted = signal
        if failing:
            return 503, [], None
        if signal == "logs":
            return super()._decide(headers, body)
        spans = [
            {**span, "attrs": {}}
            for rs in orjson.loads(body)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for span in ss["spans"]
        ]
        return self.ok_status, spans, None

    def accepted_on(self, path: str) -> list[Any]:
        return [req for req in self.accepted() if req.path == path]


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    made: list[TwoSignalReceiver] = []

    def make(fail: dict[str, int]) -> TwoSignalReceiver:
        made.append(TwoSignalReceiver(fail))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


def _run(
    url: str,
    run_id: str,
    fail_silently: bool = False,
    before_end: Callable[[], None] | None = None,
    **more: Any,
) -> None:
    handler = {
        "type": "restapi",
        "service_type": "generic",
        "format": "otlp",
        "api_url": url,
        "signals": ["logs", "traces"],
        "flush_interval": 0.05,
        "buffer_size": 8,
        "max_retries": 10,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
        **more,
    }
    sinks = {"trace_type": "multi", "handlers": [handler], "fail_silently": fail_silently}
    with workflow("etl", run_id=run_id, **sinks) as wf:
        with job("load"):
            for s in range(STAGES):
                with stage(f"s{s}") as st:
                    for i in range(LINES):
                        st.info(f"line {s}.{i}")
                # Each stage's records in batches of their own: a backlog would go in one batch
                # (see the REST sink's BACKLOG_RECORDS), one request of each signal, and the
                # failures planned between two batches' requests would never come.
                wf.flush()
        if before_end is not None:
            before_end()


@pytest.mark.parametrize(
    "fail",
    [{"traces": 1}, {"traces": 3}, {"logs": 1}, {"logs": 3}, {"traces": 2, "logs": 2}],
    ids=["traces-once", "traces-thrice", "logs-once", "logs-thrice", "both"],
)
def test_each_signal_is_retried_on_its_own(make_receiver: Any, fail: dict[str, int]) -> None:
    receiver = make_receiver(fail)
    _run(receiver.base_url + "/v1/logs", "signals-run")
    assert sum(receiver.fail.values()) == 0, "every planned failure happened"
    assert len([r for r in receiver.requests if r.status == 503]) == sum(fail.values())

    logs = receiver.accepted_on("/v1/logs")
    traces = receiver.accepted_on("/v1/traces")
    for req in logs:
        otlp_request(req.body)
    for req in traces:
        otlp_traces_request(req.body)

    # Every log record exactly once, by record id: the lines and the 2 events of each scope.
    log_ids = Counter(rid for req in logs for rid in req.record_ids)
    assert all(rid is not None for rid in log_ids)
    assert [rid for rid, n in log_ids.items() if n > 1] == []
    assert len(log_ids) == STAGES * LINES + 2 * (STAGES + 2)
    bodies = Counter(rec["body"]["stringValue"] for req in logs for rec in req.records)
    for s in range(STAGES):
        for i in range(LINES):
            assert bodies[f"line {s}.{i}"] == 1

    # Every span exactly once, by span id: the workflow, the job and each stage.
    span_ids = Counter(span["spanId"] for req in traces for span in req.records)
    assert [sid for sid, n in span_ids.items() if n > 1] == []
    names = sorted(span["name"] for req in traces for span in req.records)
    assert names == sorted(["workflow etl", "job load"] + [f"stage s{s}" for s in range(STAGES)])


@pytest.mark.parametrize("where", ["memory", "spool"])
def test_records_held_through_an_outage_are_sent_once_per_signal(
    make_receiver: Any, where: str, tmp_path: Any
) -> None:
    """With no retries left, a failed batch waits (in memory behind the circuit breaker, or in
    the spool, read back from disk) and is probed until it goes through: still each log
    record and each span once. The workflow waits, before it ends, until what was logged so
    far arrived (a spool that still holds records at close is sent on the next start)."""
    receiver = make_receiver({"logs": 3, "traces": 3})
    more: dict[str, Any] = {"max_retries": 0}
    if where == "spool":
        more["spool_dir"] = str(tmp_path / "spool")
    # So far: the workflow's start, the job's start and end, each stage's lines and events;
    # the spans of the job and the stages.
    so_far = (3 + STAGES * (LINES + 2)) + (1 + STAGES)

    def arrived() -> None:
        assert receiver.wait_for(so_far, timeout=60), receiver.accepted_records

    # fail_silently: the outage is reported, not raised, while the batch waits.
    _run(receiver.base_url + "/v1/logs", f"held-{where}", True, arrived, **more)
    assert sum(receiver.fail.values()) == 0
    logs = receiver.accepted_on("/v1/logs")
    traces = receiver.accepted_on("/v1/traces")
    for req in logs:
        otlp_request(req.body)
    for req in traces:
        otlp_traces_request(req.body)
    log_ids = Counter(rid for req in logs for rid in req.record_ids)
    assert [rid for rid, n in log_ids.items() if n > 1] == []
    assert len(log_ids) == STAGES * LINES + 2 * (STAGES + 2)
    span_ids = Counter(span["spanId"] for req in traces for span in req.records)
    assert [sid for sid, n in span_ids.items() if n > 1] == []
    assert len(span_ids) == STAGES + 2
