"""What the sink writes: one document per record, ``_id`` = record_id, ECS field names, the
index's mapping or a data stream. Each test runs against LocalElasticsearch and, with
TRACE_TEST_ES_URL set, against a real cluster."""

from __future__ import annotations

from typing import Any

import pytest
from es_helpers import Cluster, Memory, ids_of, trace_with

from workflow_traces.core.record import Record
from workflow_traces.exporters.elasticsearch.documents import record_from_doc
from workflow_traces.exporters.elasticsearch.schema import ECS_VERSION

pytestmark = pytest.mark.network


def _body(answer: Any) -> Any:
    """An answer's JSON: the Elasticsearch client wraps it (``.body``), opensearch-py does not."""
    return getattr(answer, "body", answer)


def _sent(cluster: Cluster, index: str, **kwargs: Any) -> tuple[list[Record], dict[str, Any]]:
    """Log a few records of every shape through a Trace into ``index``; return what was sent
    and the documents found."""
    memory = Memory()
    handler = cluster.handler("run-docs", index, **kwargs)
    trace = trace_with(
        "run-docs", [handler, memory], parent="parent-1", workflow_name="etl", team="data"
    )
    trace.event("workflow", "started", name="etl")
    for i in range(25):
        trace.info(f"line {i}")
    try:
        raise ValueError("bad row 7")
    except ValueError:
        trace.exception("row failed")
    trace.event("workflow", "succeeded", name="etl", duration=1.25)
    trace.handler.close()
    return memory.records, cluster.documents(index)


def test_one_document_per_record_with_record_id_as_id(cluster: Cluster) -> None:
    index = cluster.new_index()
    sent, docs = _sent(cluster, index)
    assert len(sent) == 28
    assert ids_of(sent) == ids_of(docs.values())  # every record once, nothing else
    for doc_id, doc in docs.items():
        assert doc_id == doc["record_id"]


def test_documents_use_ecs_names_and_read_back_as_the_records(cluster: Cluster) -> None:
    index = cluster.new_index()
    sent, docs = _sent(cluster, index)
    by_id = {r.record_id: r for r in sent}
    failed = next(d for d in docs.values() if d["message"] == "row failed")
    assert failed["log"]["level"] == "error"  # as ecs-logging writes it
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "bad row 7"
    assert "Traceback" in failed["error"]["stack_trace"]
    assert failed["is_err"] is True
    assert failed["service"]["name"] == "etl"
    assert failed["labels"] == {"team": "data"}
    assert failed["extras"] == {"team": "data"}
    assert failed["ecs"]["version"] == ECS_VERSION
    assert failed["host"]["name"] == by_id[failed["record_id"]].host
    assert failed["process"]["pid"] == by_id[failed["record_id"]].process
    assert failed["log"]["origin"]["function"] == "_sent"
    assert failed["log"]["origin"]["file"]["name"] == "test_es_documents.py"  # the base name
    assert failed["log"]["origin"]["file"]["path"] == __file__  # the full path beside it
    assert failed["process"]["thread"]["name"] == "MainThread"
    assert failed["process"]["name"] == "MainProcess"
    assert isinstance(failed["log"]["origin"]["file"]["line"], int)
    assert failed["run_id"] == "run-docs"
    assert failed["parent_run_id"] == "parent-1"
    assert failed["workflow_name"] == "etl"
    ts = failed["@timestamp"]
    assert ts.endswith("Z") and len(ts.split(".")[1]) == 10  # nanoseconds
    end = next(d for d in docs.values() if d.get("status") == "succeeded")
    assert (end["kind"], end["scope"], end["status"]) == ("event", "workflow", "succeeded")
    # A lifecycle event is an ECS event: under event.*, never a top-level text.
    assert end["event"] == {
        "kind": "event",
        "action": "succeeded",
        "outcome": "success",
        "duration": 1_250_000_000,  # nanoseconds
    }
    start = next(d for d in docs.values() if d.get("status") == "running")
    assert start["event"] == {"kind": "event", "action": "started", "outcome": "unknown"}
    assert all(isinstance(d.get("event", {}), dict) for d in docs.values())
    assert not any("duration" in d for d in docs.values())
    # Everything the record holds comes back (size is not stored; the store uses 256 too).
    for doc in docs.values():
        assert record_from_doc(doc) == by_id[doc["record_id"]]._replace(size=256)


def test_plain_index_is_created_with_the_mapping(cluster: Cluster) -> None:
    index = cluster.new_index()
    _sent(cluster, index)
    mapping = cluster.api().mapping(index)
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["@timestamp"]["type"] == "date_nanos"
    assert props["run_id"]["type"] == "keyword"
    assert props["time_ns"]["type"] == "long"
    assert props["extras"]["enabled"] is False
    assert props["log"]["properties"]["level"]["type"] == "keyword"


def test_existing_index_is_used_as_it_is(cluster: Cluster) -> None:
    index = cluster.new_index()
    cluster.api().create_index(index, {"properties": {"run_id": {"type": "keyword"}}})
    sent, docs = _sent(cluster, index)
    assert ids_of(sent) == ids_of(docs.values())


def _needs_data_streams(cluster: Cluster) -> None:
    if cluster.is_opensearch and not cluster.is_real:
        # A gap of osmem-server, not of OpenSearch: it answers each document of a data stream
        # with 400 "data streams are not supported by osmem" (test_osmem_has_no_data_streams).
        # The opensearch_real suite runs these against a real OpenSearch.
        pytest.skip("osmem-server has no data streams")


def test_data_stream_mode_writes_with_create(cluster: Cluster) -> None:
    _needs_data_streams(cluster)
    stream = cluster.new_index("data_stream")
    sent, docs = _sent(cluster, stream, data_stream=True)
    assert ids_of(sent) == ids_of(docs.values())
    client = cluster.client()
    info = _body(client.indices.get_data_stream(name=stream))["data_streams"][0]
    assert info["name"] == stream
    assert info["template"] == stream
    template = _body(client.indices.get_index_template(name=stream))["index_templates"][0]
    assert template["index_template"]["index_patterns"] == [stream]
    if cluster.local is not None:
        bulks = [r for r in cluster.local.requests if r.path.endswith("/_bulk")]
        assert bulks and all(r.path == f"/{stream}/_bulk" for r in bulks)


@pytest.mark.parametrize("data_stream", [False, True], ids=["index", "data_stream"])
def test_a_batch_sent_twice_keeps_one_copy(cluster: Cluster, data_stream: bool) -> None:
    """What a retry does after a lost response: the same _ids again, no duplicates."""
    if data_stream:
        _needs_data_streams(cluster)
    index = cluster.new_index("data_stream" if data_stream else "index")
    memory = Memory()
    handler = cluster.handler("run-twice", index, data_stream=data_stream)
    trace = trace_with("run-twice", [memory])
    for i in range(40):
        trace.info(f"line {i}")
    trace.handler.close()
    exporter = handler.exporter
    assert exporter.export(memory.records) is None
    assert exporter.export(memory.records) is None  # the second time: 409s or overwrites
    handler.close()
    docs = cluster.documents(index)
    assert ids_of(docs.values()) == ids_of(memory.records)
    assert set(ids_of(docs.values()).values()) == {1}


def test_documents_that_do_not_fit_the_mapping_are_dropped_and_reported(cluster: Cluster) -> None:
    """A real 400 per item: ``message`` mapped as a number."""
    index = cluster.new_index()
    cluster.api().create_index(index, {"properties": {"message": {"type": "long"}}})
    memory = Memory()
    handler = cluster.handler("run-400", index, fail_silently=True)
    trace = trace_with("run-400", [handler, memory])
    trace.info("12345")  # fits a long
    for i in range(4):
        trace.info(f"not a number {i}")
    trace.handler.close()
    docs = cluster.documents(index)
    assert [d["message"] for d in docs.values()] == ["12345"]
    health = handler.health()
    assert (health.written, health.failed) == (1, 4)
    assert health.last_error is not None
    assert "400" in health.last_error and "parsing_exception" in health.last_error


def test_the_fast_encoding_gives_the_same_documents() -> None:
    """Plain log lines reuse the serialized context of earlier lines; every line must still
    be exactly the JSON of record_to_doc, whatever changes between records."""
    import time

    import orjson

    from workflow_traces.exporters.elasticsearch.schema import encode_action, record_to_doc
    from workflow_traces.exporters.encode import dumps

    shared = {"team": "data", "n": 1.5}
    base = Record(
        time.time_ns(), "INFO", 20, "m", "run", None, "wf", None, None, "/a.py", 1, "f", 1, 2,
        "host", "id-0", logger="app",
    )  # fmt: skip
    records = []
    for i in range(400):
        records.append(
            base._replace(
                time_ns=base.time_ns + i * 7919,
                message=f'line "{i}" \u00e9\n',
                record_id=f"id-{i}",
                parent_run_id="p" if i % 2 else None,
                job_name="job" if i % 3 else None,
                lineno=i % 5,
                thread=2 + i % 2,
                extras=shared if i % 4 else None,
            )
        )
    records += [
        base._replace(message="bad \udcff surrogate", record_id="odd-1"),
        base._replace(kind="event", scope="job", event="started", status="running"),
        base._replace(exc_type="E", exc_message="m", exc_traceback="tb", is_err=True),
        base._replace(extras={"fresh": [1]}),
        base._replace(extras={"fresh": [2]}),  # another dict, same shape: not confused
        base._replace(level="ERROR", levelno=40, is_err=True),
    ]
    for rec in records:
        for op in ("index", "create"):
            action, doc, end = encode_action(rec, op, None).split(b"\n")
            assert end == b""
            assert orjson.loads(action) == {op: {"_id": rec.record_id}}
            assert orjson.loads(doc) == orjson.loads(dumps(record_to_doc(rec)))
