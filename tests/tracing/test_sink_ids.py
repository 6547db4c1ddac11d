"""Each sink carries the ids the way its service documents log-trace correlation. Bodies are
checked with each service's own code where the suite has it (opentelemetry-proto parses OTLP
strictly, datadog-api-client reads Datadog's), twice for each encoder: the first record of a
context takes the slow path, the next ones its template."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from workflow_traces import MultiHandler, Record, Trace
from workflow_traces.core.context import Scope, reset_scope, set_scope
from workflow_traces.core.record import as_record
from workflow_traces.exporters.elasticsearch.documents import record_from_doc
from workflow_traces.exporters.elasticsearch.schema import encode_actions, record_to_doc
from workflow_traces.exporters.rest.datadog import encode_datadog
from workflow_traces.exporters.rest.loki import encode_loki
from workflow_traces.exporters.rest.otlp import encode_otlp

sys.path.insert(0, str(Path(__file__).parents[1] / "network_rest"))
from conformance import datadog_items, otlp_request

SCOPE = Scope().child("wf", "job", "stage", "run-x", None)


def _records(n: int = 3) -> list[Record]:
    trace = Trace("run-x", handler=MultiHandler("run-x"))
    token = set_scope(SCOPE)
    try:
        return [as_record(trace._record(20, f"m{i}", False, None, 1, False)) for i in range(n)]
    finally:
        reset_scope(token)


def test_otlp_log_records_carry_trace_id_and_span_id() -> None:
    (request,) = encode_otlp(_records(), "svc", {})
    otlp_request(request.body)  # strict: unknown fields or wrong types raise
    logs = orjson.loads(request.body)["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert len(logs) == 3
    for log in logs:
        assert (log["traceId"], log["spanId"]) == (SCOPE.trace_id, SCOPE.span_id)


def test_datadog_entries_carry_its_correlation_attributes() -> None:
    bodies = [r.body for r in encode_datadog(_records(), "svc", "env:test")]
    entries = [e for body in bodies for e in orjson.loads(body)]
    for body in bodies:
        datadog_items(body)
    assert len(entries) == 3
    assert SCOPE.trace_id is not None and SCOPE.span_id is not None
    for entry in entries:
        assert entry["dd.trace_id"] == str(int(SCOPE.trace_id[16:], 16))
        assert entry["dd.span_id"] == str(int(SCOPE.span_id, 16))
        assert int(entry["dd.trace_id"]) < 2**64
        assert (entry["trace_id"], entry["span_id"]) == (SCOPE.trace_id, SCOPE.span_id)


def test_loki_values_carry_the_ids_in_structured_metadata() -> None:
    (request,) = encode_loki(_records(), {"service": "svc"})
    (stream,) = orjson.loads(request.body)["streams"]
    assert "trace_id" not in stream["stream"]  # never a label: high cardinality
    assert len(stream["values"]) == 3
    for _ns, _line, meta in stream["values"]:
        assert (meta["trace_id"], meta["span_id"]) == (SCOPE.trace_id, SCOPE.span_id)


def test_elasticsearch_documents_carry_ecs_trace_and_span_ids() -> None:
    records = _records()
    lines = "".join(encode_actions(records, "index")).splitlines()
    docs = [orjson.loads(line) for line in lines[1::2]]
    assert len(docs) == 3
    for doc in docs:
        assert doc["trace"] == {"id": SCOPE.trace_id}
        assert doc["span"] == {"id": SCOPE.span_id}
    back = record_from_doc(record_to_doc(records[0]))
    assert (back.trace_id, back.span_id) == (SCOPE.trace_id, SCOPE.span_id)
