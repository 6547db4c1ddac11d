"""The Elasticsearch store answers exactly like the SQLite store: the same runs written through
one MultiHandler to SQLite and to Elasticsearch, then list_runs / get_run compared. Runs against
LocalElasticsearch and, with TRACE_TEST_ES_URL set, a real cluster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from es_helpers import Cluster
from local_services import LocalElasticsearch

from workflow_traces import MultiHandler, RunNotFoundError, SQLiteHandler, Trace, open_store
from workflow_traces.core.record import Record, as_record, new_record_id
from workflow_traces.store.elasticsearch import ElasticsearchStore
from workflow_traces.store.local import Store

pytestmark = pytest.mark.network


def _run(
    cluster: Cluster,
    db: Path,
    index: str,
    run_id: str,
    parent: str | None,
    workflow: str | None,
    *,
    events: tuple[str, ...] = (),
    logs: int = 3,
    ties: int = 0,
) -> None:
    sqlite = SQLiteHandler(run_id, parent, db_path=db, buffer_size=1000, flush_interval=0.05)
    es = cluster.handler(run_id, index, buffer_size=1000)
    extras = {"workflow_name": workflow} if workflow else {}
    multi = MultiHandler(run_id, parent, handlers=[sqlite, es], extras=extras, fail_silently=False)
    trace = Trace(run_id, parent, extras=extras, handler=multi)
    if "started" in events:
        trace.event("workflow", "started", name=workflow)
    trace.event("job", "started", name="load")
    for i in range(logs):
        trace.info(f"{run_id} line {i}")
    if ties:
        # Records with the same time_ns: they read back in the order they were made.
        base = as_record(trace._record(20, "tie", False, None, 1, queue=False))
        now = time.time_ns()
        for i in range(ties):
            multi.dispatch(
                base._replace(time_ns=now, message=f"tie {i}", record_id=new_record_id())
            )
    trace.event("job", "succeeded", name="load", duration=0.5)
    for event in events:
        if event != "started":
            trace.event(
                "workflow", event, name=workflow, duration=None if event == "cancelled" else 2.5
            )
    multi.close()


def _stores(cluster: Cluster, db: Path, index: str) -> tuple[Store, Store]:
    cluster.refresh(index)
    es_store = ElasticsearchStore.from_url(cluster.store_url(index), **cluster.store_kwargs())
    return open_store(db), es_store


@pytest.fixture
def written(cluster: Cluster, tmp_path: Path) -> tuple[Cluster, Path, str]:
    db = tmp_path / "traces.db"
    index = cluster.new_index()
    _run(cluster, db, index, "root", None, "etl", events=("started", "succeeded"), ties=12)
    _run(cluster, db, index, "child-a", "root", "etl", events=("started", "failed"))
    _run(cluster, db, index, "child-b", "root", "load", events=("started",))  # unfinished
    _run(cluster, db, index, "grandchild", "child-a", "etl", events=("started", "cancelled"))
    _run(cluster, db, index, "no-events", None, None, logs=2)
    _run(cluster, db, index, "big", None, "bulk", events=("started", "succeeded"), logs=2300)
    return cluster, db, index


def test_list_runs_is_the_same(written: tuple[Cluster, Path, str]) -> None:
    cluster, db, index = written
    sqlite, es = _stores(cluster, db, index)
    with sqlite, es:
        expected = sqlite.list_runs(limit=1000)
        assert len(expected) == 6
        assert es.list_runs(limit=1000) == expected
        for workflow in ("etl", "load", "bulk", "nope"):
            assert es.list_runs(workflow=workflow) == sqlite.list_runs(workflow=workflow)
        for status in ("succeeded", "failed", "unfinished", "cancelled"):
            assert es.list_runs(status=status) == sqlite.list_runs(status=status)
        assert es.list_runs(limit=2) == sqlite.list_runs(limit=2)


def test_get_run_is_the_same(written: tuple[Cluster, Path, str]) -> None:
    cluster, db, index = written
    sqlite, es = _stores(cluster, db, index)
    with sqlite, es:
        for run_id in ("root", "child-a", "child-b", "grandchild", "no-events", "big"):
            expected = sqlite.get_run(run_id)
            got = es.get_run(run_id)
            assert got.records == expected.records, run_id
            assert got.child_runs == expected.child_runs, run_id
            assert got == expected, run_id
        assert [c.run_id for c in es.get_run("root").child_runs] == ["child-a", "child-b"]
        assert len(es.get_run("big").records) == 2300 + 4
        ties = [r.message for r in es.get_run("root").records if r.message.startswith("tie")]
        assert ties == [f"tie {i}" for i in range(12)]
        with pytest.raises(RunNotFoundError):
            es.get_run("never-ran")


def test_many_runs_page_through_the_aggregation(cluster: Cluster, tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    index = cluster.new_index()
    sqlite = SQLiteHandler("r", None, db_path=db, buffer_size=1000, flush_interval=0.05)
    es = cluster.handler("r", index, buffer_size=1000)
    multi = MultiHandler("r", None, handlers=[sqlite, es], fail_silently=False)
    for i in range(620):  # more than one page of 500 runs
        trace = Trace(f"run-{i:04d}", "r" if i % 3 else None, handler=multi)
        trace.info("hello")
    multi.close()
    sqlite_store, es_store = _stores(cluster, db, index)
    with sqlite_store, es_store:
        expected = sqlite_store.list_runs(limit=10_000)
        assert len(expected) == 620
        assert es_store.list_runs(limit=10_000) == expected


def test_a_missing_index_has_no_runs(cluster: Cluster) -> None:
    store = ElasticsearchStore.from_url(
        cluster.store_url(cluster.new_index()), **cluster.store_kwargs()
    )
    with store:
        assert store.list_runs() == []
        with pytest.raises(RunNotFoundError):
            store.get_run("x")


def test_open_store_takes_the_url_and_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalElasticsearch(username="reader", password="pw-from-env") as server:
        handler_cluster = Cluster(server)
        handler = handler_cluster.handler(
            "env-run", "env-index", username="reader", password="pw-from-env"
        )
        trace = Trace("env-run", handler=MultiHandler("env-run", handlers=[handler]))
        trace.info("hello")
        trace.handler.close()
        monkeypatch.setenv("TRACE_ES_USERNAME", "reader")
        monkeypatch.setenv("TRACE_ES_PASSWORD", "pw-from-env")
        with open_store(f"{server.url}/env-index") as store:
            assert isinstance(store, ElasticsearchStore)
            assert [r.run_id for r in store.list_runs()] == ["env-run"]
            assert "pw-from-env" not in f"{store} {store!r}"
        monkeypatch.delenv("TRACE_ES_PASSWORD")
        with open_store(f"{server.url}/env-index") as store, pytest.raises(Exception) as caught:
            store.list_runs()
        assert "401" in str(caught.value)


def test_url_path_prefix_and_default_index() -> None:
    store = ElasticsearchStore.from_url("https://es.example.com:9243/proxy/es/my-traces", env={})
    assert store.index == "my-traces"
    assert store.connection.hosts == ("https://es.example.com:9243/proxy/es",)
    default = ElasticsearchStore.from_url("http://127.0.0.1:9200", env={})
    assert default.index == "workflow-traces"
    assert str(default) == "elasticsearch:http://127.0.0.1:9200/workflow-traces"


def test_record_fields_survive_odd_input(cluster: Cluster, tmp_path: Path) -> None:
    """Surrogates, unserializable extras, NUL: both stores hold the same cleaned values."""
    db = tmp_path / "odd.db"
    index = cluster.new_index()
    sqlite = SQLiteHandler("odd", None, db_path=db, flush_interval=0.05)
    es = cluster.handler("odd", index)
    extras = {"obj": object(), "nested": {"k": [1, 2, {"x": None}]}, "text": "caf\udce9"}
    multi = MultiHandler("odd", None, handlers=[sqlite, es], extras=extras, fail_silently=False)
    trace = Trace("odd", extras=extras, handler=multi)
    trace.info("bad \udcff surrogate and \x00 nul")
    trace.info("x" * 100_000)
    multi.close()
    sqlite_store, es_store = _stores(cluster, db, index)
    with sqlite_store, es_store:
        expected: list[Record] = sqlite_store.get_run("odd").records
        assert es_store.get_run("odd").records == expected
        assert len(expected) == 2
