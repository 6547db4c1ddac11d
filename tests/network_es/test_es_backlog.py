"""A backlog goes in few bulk requests: with the default ``buffer_size`` (100) the worker hands
the exporter about 1,000 documents at once, sent as one bulk request. Against a
LocalElasticsearch on 127.0.0.1; documents counted by record_id."""

from __future__ import annotations

import pytest
from es_helpers import Memory, fast_retry, ids_of, trace_with
from local_services import LocalElasticsearch

from workflow_traces.exporters.elasticsearch.handler import BACKLOG_DOCUMENTS, ElasticsearchHandler

pytestmark = pytest.mark.network

INDEX = "workflow-traces"


def test_a_backlog_of_small_batches_goes_in_bulk_requests_of_1000(es: LocalElasticsearch) -> None:
    handler = ElasticsearchHandler(
        "run-b", es_hosts=es.url, flush_interval=60.0, fail_silently=False, retry=fast_retry()
    )
    assert handler.buffer_size == 100
    memory = Memory()
    trace = trace_with("run-b", [handler, memory])
    trace.info("warm-up")  # connect and create the index first
    trace.handler.flush()
    before = (es.bulk_requests, es.bulk_operations)
    for i in range(2500):
        trace.info(f"record {i}")
    trace.handler.flush()
    assert es.bulk_requests - before[0] == 3  # 1,000 + 1,000 + 500, not 25 of 100
    assert es.bulk_operations - before[1] == 2500
    assert BACKLOG_DOCUMENTS == 1000
    trace.handler.close()
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)
    assert len(memory.records) == 2501
    assert handler.health().failed == 0
