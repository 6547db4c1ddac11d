"""LocalElasticsearch behaves like Elasticsearch for what we use: the official client runs
against it unchanged (product header, compatibility media types, gzip, NDJSON), and its
answers have Elasticsearch's shapes and statuses."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from elasticsearch import ApiError, BadRequestError, ConnectionError, Elasticsearch, NotFoundError
from local_services import LocalElasticsearch

from workflow_traces.exporters.elasticsearch.client import classify
from workflow_traces.pipeline.retry import PermanentError, RetryableError

pytestmark = pytest.mark.network


@pytest.fixture
def server() -> Iterator[LocalElasticsearch]:
    with LocalElasticsearch() as es:
        yield es


@pytest.fixture
def client(server: LocalElasticsearch) -> Iterator[Elasticsearch]:
    c = Elasticsearch(server.url, max_retries=0, request_timeout=5)
    yield c
    c.close()


def _raw(
    server: LocalElasticsearch, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _bulk_body(*ops: tuple[str, str, dict[str, Any] | None]) -> bytes:
    lines = []
    for op, doc_id, doc in ops:
        lines.append(orjson.dumps({op: {"_id": doc_id}}))
        if doc is not None:
            lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


def test_info_and_the_product_header(server: LocalElasticsearch, client: Elasticsearch) -> None:
    info = client.info()
    assert info["version"]["number"].startswith("8.")
    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"
    status, headers, _ = _raw(server, "GET", "/nope/_search")
    assert status == 404 and headers["x-elastic-product"] == "Elasticsearch"
    assert client.cluster.health()["status"] == "green"


def test_create_index_then_already_exists(client: Elasticsearch) -> None:
    assert client.indices.exists(index="a") is False or not client.indices.exists(index="a")
    client.indices.create(index="a", mappings={"properties": {"n": {"type": "long"}}})
    assert client.indices.exists(index="a")
    with pytest.raises(BadRequestError) as caught:
        client.indices.create(index="a")
    assert caught.value.body["error"]["type"] == "resource_already_exists_exception"
    with pytest.raises(BadRequestError) as caught:
        client.indices.create(index="Bad")
    assert caught.value.body["error"]["type"] == "invalid_index_name_exception"
    assert client.indices.get_mapping(index="a")["a"]["mappings"]["properties"]["n"] == {
        "type": "long"
    }


def test_bulk_per_item_statuses_and_errors_flag(client: Elasticsearch) -> None:
    client.indices.create(index="b", mappings={"properties": {"n": {"type": "long"}}})
    body = _bulk_body(
        ("index", "1", {"n": 1}),
        ("create", "2", {"n": 2}),
        ("create", "2", {"n": 3}),  # exists: 409
        ("index", "1", {"n": 4}),  # overwrite: 200, version 2
        ("index", "3", {"n": "not a number"}),  # 400
        ("delete", "9", None),  # 404 not_found, no error flag by itself
    )
    result = client.bulk(operations=body, index="b")
    assert result["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in result["items"]]
    assert statuses == [201, 201, 409, 200, 400, 404]
    conflict = result["items"][2]["create"]["error"]
    assert conflict["type"] == "version_conflict_engine_exception"
    assert result["items"][3]["index"]["_version"] == 2
    assert result["items"][4]["index"]["error"]["type"] == "document_parsing_exception"
    assert client.get(index="b", id="1")["_source"] == {"n": 4}


def test_bulk_gzip_and_filter_path(server: LocalElasticsearch) -> None:
    compressed = Elasticsearch(server.url, http_compress=True, max_retries=0)
    try:
        body = _bulk_body(*[("index", str(i), {"i": i}) for i in range(2000)])
        result = compressed.bulk(operations=body, index="g", filter_path="errors,items.*.status")
        assert result.body == {"errors": False, "items": [{"index": {"status": 201}}] * 2000}
        assert server.requests[-1].headers["content-encoding"] == "gzip"
    finally:
        compressed.close()
    assert server.count("g") == 2000


def test_malformed_bulk_is_a_request_error(server: LocalElasticsearch) -> None:
    status, _, body = _raw(
        server, "POST", "/x/_bulk", b"{not json\n", **{"content-type": "application/x-ndjson"}
    )
    assert status == 400
    assert json.loads(body)["error"]["type"] == "x_content_parse_exception"
    status, _, body = _raw(server, "POST", "/_bulk", b'{"index":{}}\n{"a":1}\n')
    assert status == 400 and "index is missing" in json.loads(body)["error"]["reason"]
    status, _, body = _raw(
        server, "POST", "/x/_bulk", gzip.compress(b"") + b"junk", **{"content-encoding": "gzip"}
    )
    assert status == 400


def test_documents_are_searchable_after_a_refresh() -> None:
    with LocalElasticsearch(refresh_interval=60) as server:
        client = Elasticsearch(server.url, max_retries=0)
        try:
            client.bulk(operations=_bulk_body(("index", "1", {"a": 1})), index="r")
            assert client.count(index="r")["count"] == 0
            client.indices.refresh(index="r")
            assert client.count(index="r")["count"] == 1
            client.bulk(
                operations=_bulk_body(("index", "2", {"a": 2})), index="r", refresh="wait_for"
            )
            assert client.count(index="r")["count"] == 2
        finally:
            client.close()


def _fill(client: Elasticsearch) -> None:
    docs = []
    for i in range(50):
        doc: dict[str, Any] = {
            "run_id": f"run-{i % 5}",
            "t": 1000 - i,
            "kind": "event" if i % 10 == 0 else "log",
            "log": {"level": "INFO" if i % 2 else "ERROR"},
        }
        if i % 7 == 0:
            doc["parent"] = f"p-{i % 3}"
        docs.append(("index", f"d{i:02d}", doc))
    client.bulk(operations=_bulk_body(*docs), index="s", refresh=True)


def test_queries(client: Elasticsearch) -> None:
    _fill(client)

    def ids(query: dict[str, Any]) -> set[str]:
        hits = client.search(index="s", query=query, size=100)["hits"]["hits"]
        return {h["_id"] for h in hits}

    assert len(ids({"match_all": {}})) == 50
    assert ids({"term": {"run_id": "run-1"}}) == {f"d{i:02d}" for i in range(1, 50, 5)}
    assert ids({"term": {"log.level": {"value": "ERROR"}}}) == {
        f"d{i:02d}" for i in range(0, 50, 2)
    }
    assert len(ids({"terms": {"run_id": ["run-1", "run-2"]}})) == 20
    both = {"bool": {"filter": [{"term": {"kind": "event"}}, {"range": {"t": {"gte": 970}}}]}}
    assert ids(both) == {"d00", "d10", "d20", "d30"}
    assert ids(
        {
            "bool": {
                "must_not": [{"exists": {"field": "parent"}}],
                "filter": {"ids": {"values": ["d07", "d08"]}},
            }
        }
    ) == {"d08"}
    with pytest.raises(BadRequestError):
        client.search(index="s", query={"no_such_query": {}})


def test_sort_and_search_after_pages_through_everything(client: Elasticsearch) -> None:
    _fill(client)
    seen: list[str] = []
    after = None
    while True:
        extra = {} if after is None else {"search_after": after}
        hits = client.search(
            index="s",
            sort=[{"run_id": "asc"}, {"t": {"order": "desc"}}],
            size=7,
            source=["t"],
            **extra,
        )["hits"]["hits"]
        seen.extend(h["_id"] for h in hits)
        assert all(set(h["_source"]) <= {"t"} for h in hits)
        if len(hits) < 7:
            break
        after = hits[-1]["sort"]
    assert len(seen) == len(set(seen)) == 50
    assert seen[:3] == ["d00", "d05", "d10"]  # run-0, t descending


def test_aggregations(client: Elasticsearch) -> None:
    _fill(client)
    runs: list[dict[str, Any]] = []
    after = None
    while True:
        composite: dict[str, Any] = {
            "size": 2,
            "sources": [{"run_id": {"terms": {"field": "run_id"}}}],
        }
        if after:
            composite["after"] = after
        aggs = {
            "runs": {
                "composite": composite,
                "aggs": {
                    "first": {"top_hits": {"size": 1, "sort": [{"t": "asc"}], "_source": ["t"]}},
                    "parent": {"terms": {"field": "parent", "size": 1, "order": {"_key": "desc"}}},
                    "low": {"min": {"field": "t"}},
                },
            }
        }
        result = client.search(index="s", size=0, aggs=aggs)["aggregations"]["runs"]
        runs.extend(result["buckets"])
        if len(result["buckets"]) < 2:
            break
        after = result["after_key"]
    assert [b["key"]["run_id"] for b in runs] == [f"run-{i}" for i in range(5)]
    assert all(b["doc_count"] == 10 for b in runs)
    run0 = runs[0]
    assert run0["first"]["hits"]["hits"][0]["_source"] == {"t": 955}
    assert run0["low"]["value"] == 955.0
    assert run0["parent"]["buckets"][0]["key"] == "p-2"  # d00 p-0, d35 p-2: greatest first


def test_missing_index_is_404_unless_ignored(client: Elasticsearch) -> None:
    with pytest.raises(NotFoundError):
        client.search(index="missing")
    client.indices.refresh(index="missing", ignore_unavailable=True)


def test_data_streams_need_a_template_and_create(client: Elasticsearch) -> None:
    with pytest.raises(BadRequestError):
        client.indices.create_data_stream(name="logs-x")
    client.indices.put_index_template(
        name="t1", index_patterns=["logs-x*"], data_stream={}, priority=200
    )
    with pytest.raises(BadRequestError) as caught:
        client.indices.put_index_template(
            name="t1", index_patterns=["logs-x*"], data_stream={}, create=True
        )
    assert "already exists" in caught.value.body["error"]["reason"]
    with pytest.raises(BadRequestError):  # same priority, overlapping patterns
        client.indices.put_index_template(name="t2", index_patterns=["logs-*"], priority=200)
    body = _bulk_body(
        ("index", "1", {"@timestamp": "2024-01-01T00:00:00Z"}),
        ("create", "2", {"@timestamp": "2024-01-01T00:00:00Z"}),
        ("create", "3", {"no": "timestamp"}),
    )
    items = client.bulk(operations=body, index="logs-x-1")["items"]
    assert [next(iter(i.values()))["status"] for i in items] == [400, 201, 400]
    assert items[1]["create"]["_index"].startswith(".ds-logs-x-1-")
    stream = client.indices.get_data_stream(name="logs-x-1")["data_streams"][0]
    assert stream["template"] == "t1"


def test_down_up_and_delay_look_like_outages_to_the_client(
    server: LocalElasticsearch, client: Elasticsearch
) -> None:
    client.info()
    server.down()
    with pytest.raises(ConnectionError) as caught:
        client.info()
    assert isinstance(classify(caught.value, "x"), RetryableError)
    server.up()
    assert client.info()["tagline"]
    server.delay = 0.5
    slow = client.options(request_timeout=0.1)
    with pytest.raises(Exception) as timed_out:
        slow.info()
    assert isinstance(classify(timed_out.value, "x"), RetryableError)
    server.delay = 0


def test_request_faults_carry_status_and_retry_after(
    server: LocalElasticsearch, client: Elasticsearch
) -> None:
    server.fail_requests(1, 429, retry_after=3, path="_search")
    with pytest.raises(ApiError) as caught:
        client.search(index="_all")
    err = classify(caught.value, "x")
    assert isinstance(err, RetryableError) and err.retry_after == 3
    server.fail_requests(1, 403, path="_search")
    with pytest.raises(ApiError) as caught:
        client.search(index="_all")
    assert isinstance(classify(caught.value, "x"), PermanentError)
    assert client.search(index="_all")["hits"]["total"]["value"] == 0


def test_auth_is_required_when_configured() -> None:
    with LocalElasticsearch(username="u", password="p") as server:
        status, headers, body = _raw(server, "GET", "/")
        assert status == 401 and "security_exception" in body.decode()
        assert "Basic" in headers["www-authenticate"]
        good = Elasticsearch(server.url, basic_auth=("u", "p"))
        try:
            assert good.info()["cluster_name"] == server.cluster_name
        finally:
            good.close()


def test_documents_unchecked_when_asked() -> None:
    """check_documents=False (benchmarks): documents are kept as received, searched later."""
    with LocalElasticsearch(check_documents=False, refresh_interval=None) as server:
        client = Elasticsearch(server.url, max_retries=0)
        try:
            client.indices.create(index="u", mappings={"properties": {"n": {"type": "long"}}})
            body = _bulk_body(
                ("index", "1", {"n": "not checked"}),
                ("index", "2", {"n": 2}),
                ("update", "2", {"doc": {"m": 3}}),
            )
            statuses = [
                next(iter(i.values()))["status"]
                for i in client.bulk(operations=body, index="u")["items"]
            ]
            assert statuses == [201, 201, 200]
            raw = b'{"index":{"_id":"3"}}\n[1, 2]\n'
            bad = client.bulk(operations=raw, index="u")["items"][0]["index"]
            assert bad["status"] == 400
            hits = client.search(index="u", query={"term": {"n": 2}})["hits"]["hits"]
            assert [h["_source"] for h in hits] == [{"n": 2, "m": 3}]
            assert server.documents("u")["1"] == {"n": "not checked"}
        finally:
            client.close()
