"""The OpenSearch sink and store against osmem-server, a third-party OpenSearch-API server from
PyPI (not written by us), started by the tests on 127.0.0.1: configured like any sink, bulk
writes counted by record_id, a batch sent twice kept once, runs read back through
``open_store("opensearch+http://...")`` with their child runs and run tree. The shared
document, mapping and read-back tests run against osmem too (the ``cluster`` fixture); the
opt-in ``opensearch_real`` suite runs all of them against a real OpenSearch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from es_helpers import Cluster, Memory, ids_of, trace_with

from workflow_traces import MultiHandler, OpenSearchHandler, Trace, open_store
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
from workflow_traces.settings.config import OpenSearchConfig, validate_handler
from workflow_traces.settings.factory import build_handler
from workflow_traces.store.tree import render_tree

pytestmark = pytest.mark.network


@pytest.fixture
def clone(osmem: Any) -> Iterator[Cluster]:
    """A fresh clone of the osmem base cluster for one test."""
    with osmem.clone() as c:
        yield Cluster(None, product="opensearch", url=c.url)


def _run(cluster: Cluster, index: str, run_id: str, parent: str | None, status: str) -> None:
    handler = cluster.handler(run_id, index, buffer_size=500)
    multi = MultiHandler(run_id, parent, handlers=[handler], extras={"workflow_name": "etl"})
    trace = Trace(run_id, parent, extras={"workflow_name": "etl"}, handler=multi)
    trace.event("workflow", "started", name="etl")
    trace.event("job", "started", name="load")
    for i in range(30):
        trace.info(f"{run_id} row {i}")
    trace.event("job", status, name="load", duration=0.25)
    trace.event("workflow", status, name="etl", duration=1.5)
    multi.close()
    assert handler.health().written == 34 and handler.health().failed == 0


def test_configured_sink_writes_every_record_once(clone: Cluster) -> None:
    index = clone.new_index()
    memory = Memory()
    cfg = validate_handler(
        {"type": "opensearch", "es_hosts": clone.url, "index_name": index, "flush_interval": 0.05}
    )
    assert isinstance(cfg, OpenSearchConfig)
    sink = build_handler(cfg, "os-config", None, {}, fail_silently=False)  # as get_trace does
    assert isinstance(sink, OpenSearchHandler)
    trace = trace_with("os-config", [sink, memory])
    for i in range(250):
        trace.info(f"line {i}")
    trace.handler.close()
    docs = clone.documents(index)
    assert len(memory.records) == 250
    assert ids_of(docs.values()) == ids_of(memory.records)  # every record once, by id
    assert all(doc_id == doc["record_id"] for doc_id, doc in docs.items())
    assert sink.health().written == 250


def test_a_batch_sent_twice_keeps_one_copy(clone: Cluster) -> None:
    index = clone.new_index()
    memory = Memory()
    trace = trace_with("os-twice", [memory])
    for i in range(120):
        trace.info(f"line {i}")
    trace.handler.close()
    handler = clone.handler("os-twice", index)
    assert handler.exporter.export(memory.records) is None
    assert handler.exporter.export(memory.records) is None  # a retry after a lost answer
    handler.close()
    counts = ids_of(clone.documents(index).values())
    assert counts == ids_of(memory.records) and set(counts.values()) == {1}


def test_the_store_reads_runs_children_and_the_tree(clone: Cluster) -> None:
    index = clone.new_index()
    _run(clone, index, "os-root", None, "succeeded")
    _run(clone, index, "os-child-a", "os-root", "failed")
    _run(clone, index, "os-child-b", "os-root", "succeeded")
    _run(clone, index, "os-grandchild", "os-child-a", "succeeded")
    clone.refresh(index)
    with open_store(clone.store_url(index)) as store:
        assert str(store).startswith("opensearch:")
        runs = {r.run_id: r for r in store.list_runs()}
        assert set(runs) == {"os-root", "os-child-a", "os-child-b", "os-grandchild"}
        assert runs["os-child-a"].status == "failed" and runs["os-root"].status == "succeeded"
        assert runs["os-root"].duration == 1.5 and runs["os-root"].record_count == 34
        root = store.get_run("os-root")
        assert [c.run_id for c in root.child_runs] == ["os-child-a", "os-child-b"]
        assert [c.run_id for c in store.get_run("os-child-a").child_runs] == ["os-grandchild"]
        assert [r.message for r in root.logs] == [f"os-root row {i}" for i in range(30)]
        tree = root.tree
        assert (tree.status, [c.name for c in tree.children]) == ("succeeded", ["load"])
        assert tree.children[0].duration == 0.25
        assert "load" in render_tree(tree)


def test_osmem_has_no_data_streams(clone: Cluster) -> None:
    """The gap the shared data stream tests skip on osmem: it refuses every document of a data
    stream, and the sink reports that clearly (real OpenSearch has data streams)."""
    stream = clone.new_index("data_stream")
    handler = clone.handler("os-ds", stream, data_stream=True, fail_silently=True)
    trace = trace_with("os-ds", [handler])
    trace.info("into a stream")
    trace.handler.close()
    health = handler.health()
    assert (health.written, health.failed) == (0, 1)
    assert health.last_error is not None and "data streams are not supported" in health.last_error


def test_the_elasticsearch_client_is_refused_by_opensearch_with_a_pointer(clone: Cluster) -> None:
    handler = ElasticsearchHandler("os-wrong", es_hosts=clone.url, fail_silently=True)
    trace = trace_with("os-wrong", [handler])
    trace.info("to the wrong product")
    trace.handler.close()
    error = handler.health().last_error or ""
    assert handler.health().failed == 1
    assert "opensearch" in error.lower()


def test_opensearch_refuses_an_api_key() -> None:
    with pytest.raises(ConfigError, match="api_key: OpenSearch has no API keys"):
        OpenSearchHandler("os-key", es_hosts="http://127.0.0.1:9", api_key="abc")
