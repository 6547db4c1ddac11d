"""Delivery through faults, against LocalElasticsearch's knobs, counting records by record_id:
per-item 429 retried, per-item 400 dropped and reported, lost responses retried without
duplicates, request-level 503 / 400 / 401 / 413, and the server down then up. Each test runs
with the Elasticsearch sink and with the OpenSearch sink (the opensearch-py client speaks the
same bulk API to the local server): the shared bulk logic through each product's client."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from diagnostics_support import Reports
from es_helpers import Memory, fast_retry, ids_of, trace_with, wait_for
from local_services import LocalElasticsearch

from workflow_traces import SinkError
from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
from workflow_traces.exporters.elasticsearch.opensearch import OpenSearchHandler

pytestmark = pytest.mark.network

INDEX = "workflow-traces"
_sink: type[ElasticsearchHandler] = ElasticsearchHandler


@pytest.fixture(autouse=True, params=["elasticsearch", "opensearch"])
def product(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with each product's sink (``_sink``)."""
    kind = OpenSearchHandler if request.param == "opensearch" else ElasticsearchHandler
    monkeypatch.setattr(sys.modules[__name__], "_sink", kind)
    return str(request.param)


def _handler(es: LocalElasticsearch, **kwargs: object) -> ElasticsearchHandler:
    options: dict[str, object] = {
        "flush_interval": 0.05,
        "fail_silently": True,
        "retry": fast_retry(),
        "buffer_size": 50,
        **kwargs,
    }
    return _sink("run-f", es_hosts=es.url, **options)  # type: ignore[arg-type]


def _log(handler: ElasticsearchHandler, n: int, close: bool = True) -> Memory:
    memory = Memory()
    trace = trace_with("run-f", [handler, memory])
    for i in range(n):
        trace.info(f"record {i}")
    if close:
        trace.handler.close()
    else:
        trace.handler.flush()
    return memory


def test_items_answered_429_are_retried_until_written(es: LocalElasticsearch) -> None:
    es.fail_items(30, 429)
    handler = _handler(es)
    memory = _log(handler, 200)
    docs = es.documents(INDEX)
    assert ids_of(docs.values()) == ids_of(memory.records)  # all 200, each once
    assert len(es.rejected) == 30 and {s for s, _ in es.rejected} == {429}
    assert {i for _, i in es.rejected} <= set(docs)  # the throttled ones arrived later
    health = handler.health()
    assert (health.written, health.failed, health.dropped) == (200, 0, 0)


def test_items_answered_5xx_are_retried(es: LocalElasticsearch) -> None:
    es.fail_items(5, 503)
    es.fail_items(5, 500)
    handler = _handler(es)
    memory = _log(handler, 60)
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)
    assert handler.health().failed == 0


def test_items_answered_400_are_dropped_and_reported(
    es: LocalElasticsearch, reports: Reports
) -> None:
    es.fail_items(3, 400, "simulated mapping conflict")
    handler = _handler(es)
    memory = _log(handler, 100)
    docs = es.documents(INDEX)
    refused = {i for s, i in es.rejected if s == 400}
    assert len(refused) == 3
    sent = ids_of(memory.records)
    assert set(docs) == set(sent) - refused  # exactly the refused ones are missing
    assert ids_of(docs.values()) == ids_of(r for r in memory.records if r.record_id not in refused)
    bulk_items = es.bulk_operations
    assert bulk_items == 100  # not retried: every item was sent once
    health = handler.health()
    assert (health.written, health.failed) == (97, 3)
    assert "simulated mapping conflict" in (health.last_error or "")
    assert "rejected 3 of" in reports.text


def test_429_and_400_in_one_batch(es: LocalElasticsearch) -> None:
    es.fail_items(2, 429)
    es.fail_items(2, 400)
    handler = _handler(es, buffer_size=1000, flush_interval=5.0)  # one batch, at close
    memory = _log(handler, 20)
    refused = {i for s, i in es.rejected if s == 400}
    throttled = {i for s, i in es.rejected if s == 429}
    docs = es.documents(INDEX)
    assert len(refused) == 2 and len(throttled) == 2
    assert set(docs) == set(ids_of(memory.records)) - refused
    assert throttled <= set(docs)
    assert handler.health().failed == 2


def test_a_lost_response_is_retried_without_duplicates(es: LocalElasticsearch) -> None:
    """The bulk is applied but the answer never comes: the retry sends the same _ids."""
    es.lose_responses(2)
    handler = _handler(es)
    memory = _log(handler, 150)
    docs = es.documents(INDEX)
    assert ids_of(docs.values()) == ids_of(memory.records)
    versions = es.versions(INDEX)
    assert max(versions.values()) >= 2  # written twice, kept once
    assert es.bulk_operations > 150
    assert handler.health().failed == 0


def test_a_lost_response_in_data_stream_mode(es: LocalElasticsearch) -> None:
    es.lose_responses(1)
    handler = _handler(es, index_name="logs-wt-default", data_stream=True)
    memory = _log(handler, 80)
    docs = es.documents("logs-wt-default")
    assert ids_of(docs.values()) == ids_of(memory.records)
    assert any(s == 409 for s, _ in es.rejected)  # the resent copies answered "exists"
    health = handler.health()
    assert (health.written, health.failed) == (80, 0)


def test_requests_answered_503_with_retry_after_are_retried(es: LocalElasticsearch) -> None:
    es.fail_requests(3, 503, retry_after=0.05)
    handler = _handler(es)
    memory = _log(handler, 120)
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)
    assert handler.health().failed == 0


def test_a_request_answered_400_is_not_retried(es: LocalElasticsearch) -> None:
    es.fail_requests(1, 400, reason="simulated bad request")
    handler = _handler(es, buffer_size=1000, flush_interval=5.0)  # one batch, at close
    memory = _log(handler, 30)
    assert es.documents(INDEX) == {}
    bulks = [r for r in es.requests if r.path.endswith("_bulk")]
    assert len(bulks) == 1
    health = handler.health()
    assert health.failed == len(memory.records) == 30
    assert "400" in (health.last_error or "")


def test_fail_silently_false_raises_on_flush_with_the_cause(es: LocalElasticsearch) -> None:
    es.fail_items(2, 400, "simulated rejection")
    handler = _handler(es, fail_silently=False)
    trace = trace_with("run-f", [handler])
    trace.handler.fail_silently = False
    for i in range(10):
        trace.info(f"record {i}")
    with pytest.raises(SinkError) as caught:
        trace.handler.flush()
    assert handler.name in str(caught.value)
    assert "simulated rejection" in str(caught.value)
    trace.handler.close()


def test_a_413_splits_the_request(es: LocalElasticsearch) -> None:
    es.fail_requests(1, 413)
    handler = _handler(es, buffer_size=1000, flush_interval=5.0)  # one batch, at close
    memory = _log(handler, 64)
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)
    bulks = [r for r in es.requests if r.path.endswith("_bulk")]
    assert len(bulks) == 3  # refused whole, then two halves
    assert handler.health().failed == 0


def test_down_then_up_everything_arrives_once(es: LocalElasticsearch) -> None:
    handler = _handler(es, buffer_size=20)
    memory = Memory()
    trace = trace_with("run-f", [handler, memory])
    trace.info("before")
    trace.handler.flush()
    es.down()
    for i in range(100):
        trace.info(f"during {i}")
    time.sleep(0.5)
    assert es.documents(INDEX).keys() == {memory.records[0].record_id}
    es.up()
    for i in range(10):
        trace.info(f"after {i}")
    trace.handler.close()
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)
    assert len(memory.records) == 111
    assert handler.health().failed == 0


def test_wrong_credentials_are_not_retried() -> None:
    with LocalElasticsearch(username="elastic", password="right") as es:
        handler = _sink(
            "run-401",
            es_hosts=es.url,
            username="elastic",
            password="wrong",
            flush_interval=5.0,  # one batch, at close
            retry=fast_retry(),
        )
        _log(handler, 10)
        assert es.documents(INDEX) == {}
        health = handler.health()
        assert health.failed == 10
        assert "401" in (health.last_error or "")
        # HEAD for the index (refused), then nothing more for this batch: not retried.
        assert len(es.requests) == 1


def test_spooled_records_are_sent_by_the_next_process(
    es: LocalElasticsearch, tmp_path: Path
) -> None:
    """Closed during an outage with spool_dir: the records wait on disk, and the next handler
    (same cluster, same index, same spool_dir) sends them, oldest first, exactly once."""
    spool = tmp_path / "spool"
    fast = {"retry": None, "retry_base_delay": 0.01, "retry_max_delay": 0.05, "max_retries": 2}
    first = _handler(es, spool_dir=spool, buffer_size=20, **fast)
    memory = Memory()
    trace = trace_with("run-f", [first, memory])
    trace.info("before the outage")
    trace.handler.flush()
    es.down()
    for i in range(60):
        trace.info(f"during {i}")
    trace.handler.close(timeout=2.0)
    assert len(es.documents(INDEX)) == 1
    assert first.health().spooled == 60
    assert any(spool.rglob("*"))
    es.up()
    second = _handler(es, spool_dir=spool, buffer_size=20, **fast)
    later = Memory()
    trace2 = trace_with("run-f", [second, later])
    trace2.info("after the restart")
    trace2.handler.close()
    sent = ids_of(memory.records) + ids_of(later.records)
    docs = es.documents(INDEX)
    assert ids_of(docs.values()) == sent  # 62 records, each once
    assert len(docs) == 62
    assert second.health().spooled == 0


def test_a_slow_cluster_slows_neither_the_caller_nor_the_file_sink(
    es: LocalElasticsearch, tmp_path: Path
) -> None:
    """Answers held back: logging returns and the file sink writes everything while a bulk
    request is still waiting for its answer (no clock: the order of events shows it)."""
    from workflow_traces import WorkflowFileHandler, open_store

    handler = _handler(es, buffer_size=10)
    files = WorkflowFileHandler("run-slow", base_path=tmp_path, flush_interval=0.05)
    memory = Memory()
    trace = trace_with("run-slow", [handler, files, memory])
    trace.info("warm-up")  # connect and create the index first
    trace.handler.flush()
    answered = es.bulk_requests
    es.delay = 60  # every answer waits until the test lifts the delay
    for i in range(200):
        trace.info(f"record {i}")
    assert wait_for(lambda: es.received > len(es.requests))  # a bulk request is in flight
    files.flush()
    with open_store(tmp_path) as store:
        assert len(store.get_run("run-slow").records) == 201
    assert es.bulk_requests == answered  # the file sink is done; Elasticsearch still waits
    es.delay = 0
    trace.handler.close()
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)


def test_the_client_does_not_retry_on_its_own(es: LocalElasticsearch) -> None:
    """One export, one request: retries belong to the sink's policy, not to the client."""
    handler = _handler(es)
    memory = Memory()
    trace = trace_with("run-f", [memory])
    for i in range(5):
        trace.info(f"record {i}")
    trace.handler.close()
    exporter = handler.exporter
    assert exporter.export(memory.records[:1]) is None  # connect, create the index
    before = len([r for r in es.requests if r.path.endswith("_bulk")])
    es.fail_requests(1, 503)
    result = exporter.export(memory.records)
    assert result is not None and len(result.retry) == 5
    assert type(result.error).__name__ == "RetryableError"
    after = len([r for r in es.requests if r.path.endswith("_bulk")])
    assert after - before == 1
    es.down()
    result = exporter.export(memory.records)
    assert result is not None and len(result.retry) == 5
    assert "cannot reach" in str(result.error)
    assert type(result.error).__name__ == "RetryableError"
    es.up()
    handler.close()


def test_a_413_then_an_outage_loses_nothing(es: LocalElasticsearch) -> None:
    es.fail_requests(1, 413)
    es.fail_requests(1, 503)  # the first half, after the split
    handler = _handler(es, buffer_size=1000, flush_interval=5.0)  # one batch, at close
    memory = _log(handler, 40)
    assert ids_of(es.documents(INDEX).values()) == ids_of(memory.records)
    health = handler.health()
    assert (health.written, health.failed) == (40, 0)
