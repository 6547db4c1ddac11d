"""Credentials and TLS: the auth header is sent, secrets stay out of repr, names, errors and
logs, certificates are verified by default (a real HTTPS LocalElasticsearch with its own CA),
and the client libraries' own log records never come back into our handlers."""

from __future__ import annotations

import base64
import contextlib
import logging
import warnings
from collections.abc import Iterator

import pytest
from diagnostics_support import Reports
from es_helpers import Memory, fast_retry, ids_of, trace_with
from local_services import LocalElasticsearch

from workflow_traces import ConfigError, SinkError
from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
from workflow_traces.settings.config import ElasticsearchConfig, validate_handler
from workflow_traces.store.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.network

SECRET = "s3cr3t-Pa55-word"
KEY = "a2V5LWlkOnMzY3IzdC1hcGkta2V5"  # base64 of "key-id:s3cr3t-api-key"


@pytest.fixture
def everything_logged() -> Iterator[Reports]:
    """Every log record of every logger (root at DEBUG, client libraries included)."""
    root = logging.getLogger()
    catcher = Reports()
    old = root.level
    root.addHandler(catcher)
    root.setLevel(logging.DEBUG)
    try:
        yield catcher
    finally:
        root.removeHandler(catcher)
        root.setLevel(old)


def _write(handler: ElasticsearchHandler, n: int = 5) -> Memory:
    memory = Memory()
    trace = trace_with("run-s", [handler, memory])
    for i in range(n):
        trace.info(f"record {i}")
    with contextlib.suppress(SinkError):
        trace.handler.close()
    return memory


def test_basic_auth_is_sent() -> None:
    with LocalElasticsearch(username="elastic", password=SECRET) as es:
        handler = ElasticsearchHandler(
            "run-s", es_hosts=es.url, username="elastic", password=SECRET, flush_interval=0.05
        )
        memory = _write(handler)
        assert ids_of(es.documents("workflow-traces").values()) == ids_of(memory.records)
        token = base64.b64encode(f"elastic:{SECRET}".encode()).decode()
        assert {r.headers["authorization"] for r in es.requests} == {f"Basic {token}"}


@pytest.mark.parametrize("form", ["encoded", "id:key"])
def test_api_key_is_sent(form: str) -> None:
    given = KEY if form == "encoded" else "key-id:s3cr3t-api-key"
    with LocalElasticsearch(api_key=given) as es:
        handler = ElasticsearchHandler("run-s", es_hosts=es.url, api_key=given, flush_interval=0.05)
        memory = _write(handler)
        assert ids_of(es.documents("workflow-traces").values()) == ids_of(memory.records)
        assert {r.headers["authorization"] for r in es.requests} == {f"ApiKey {KEY}"}


def test_credentials_in_the_url_become_auth_and_leave_the_name() -> None:
    with LocalElasticsearch(username="writer-bob", password=SECRET) as es:
        url = es.url.replace("http://", f"http://writer-bob:{SECRET}@")
        handler = ElasticsearchHandler("run-s", es_hosts=url, flush_interval=0.05)
        assert SECRET not in handler.name and "writer-bob" not in handler.name
        assert handler.es_hosts == [es.url]
        memory = _write(handler)
        assert ids_of(es.documents("workflow-traces").values()) == ids_of(memory.records)


def test_secrets_never_show(everything_logged: Reports) -> None:
    """Wrong password: the failure is reported everywhere, the secret nowhere."""
    with LocalElasticsearch(username="elastic", password="the-right-one") as es:
        handler = ElasticsearchHandler(
            "run-s",
            es_hosts=es.url,
            username="elastic",
            password=SECRET,
            flush_interval=0.05,
            fail_silently=False,
            retry=fast_retry(),
        )
        logging.getLogger("elastic_transport").setLevel(logging.DEBUG)
        try:
            with pytest.raises(SinkError) as caught:
                _write_raising(handler)
        finally:
            logging.getLogger("elastic_transport").setLevel(logging.NOTSET)
        error_text = f"{caught.value} {caught.value!r} {caught.value.failures!r}"
        assert "401" in error_text
        health = handler.health()
        shown = [
            repr(handler),
            str(handler.__dict__),
            handler.name,
            repr(handler.exporter.connection),
            str(health),
            error_text,
            everything_logged.text,
        ]
        assert "elastic_transport" in {r.name.split(".")[0] for r in everything_logged.records}
        for text in shown:
            assert SECRET not in text
            assert base64.b64encode(f"elastic:{SECRET}".encode()).decode() not in text
        store = ElasticsearchStore.from_url(es.url, username="elastic", password=SECRET)
        assert SECRET not in f"{store} {store!r} {store.connection!r}"


def _write_raising(handler: ElasticsearchHandler) -> Memory:
    memory = Memory()
    trace = trace_with("run-s", [handler, memory])
    trace.handler.fail_silently = False
    trace.info("one")
    trace.handler.close()
    return memory


def test_config_keeps_secrets_out_of_repr_and_errors() -> None:
    cfg = validate_handler(
        {"type": "elasticsearch", "username": "u", "password": SECRET, "api_key": SECRET}
    )
    assert isinstance(cfg, ElasticsearchConfig)
    assert SECRET not in f"{cfg!r} {cfg} {cfg.model_dump()}"
    with pytest.raises(ConfigError) as caught:
        validate_handler({"type": "elasticsearch", "password": SECRET, "timeout": -1})
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        ElasticsearchHandler("r", username="u", password=SECRET, api_key=SECRET)
    assert "api_key" in str(caught.value) and SECRET not in str(caught.value)


# -- TLS ---------------------------------------------------------------------------------------
@pytest.fixture
def tls_es() -> Iterator[LocalElasticsearch]:
    with LocalElasticsearch(tls=True) as server:
        yield server


def test_tls_is_verified_by_default() -> None:
    handler = ElasticsearchHandler("run-s", es_hosts="https://127.0.0.1:9")
    options = handler.exporter.connection.client_options()
    assert options["verify_certs"] is True
    assert "ca_certs" not in options  # the system / certifi CA bundle
    client = handler.exporter.connection.client()
    try:
        node = client.transport.node_pool.all()[0]
        assert node.config.verify_certs is True
        assert node.config.scheme == "https"
    finally:
        client.close()
        handler.close()


def test_tls_with_the_cluster_ca_works(tls_es: LocalElasticsearch) -> None:
    assert tls_es.url.startswith("https://") and tls_es.ca_certs
    handler = ElasticsearchHandler(
        "run-s", es_hosts=tls_es.url, ca_certs=tls_es.ca_certs, flush_interval=0.05
    )
    memory = _write(handler)
    assert ids_of(tls_es.documents("workflow-traces").values()) == ids_of(memory.records)
    assert handler.health().failed == 0


def test_tls_with_an_unknown_ca_fails_and_is_not_retried(
    tls_es: LocalElasticsearch, reports: Reports
) -> None:
    handler = ElasticsearchHandler(
        "run-s", es_hosts=tls_es.url, flush_interval=5.0, retry=fast_retry()
    )
    _write(handler)
    assert tls_es.documents("workflow-traces") == {}
    health = handler.health()
    assert health.failed == 5
    assert "TLS" in (health.last_error or "") and "ca_certs" in (health.last_error or "")


def test_verification_off_only_when_asked(tls_es: LocalElasticsearch, reports: Reports) -> None:
    handler = ElasticsearchHandler(
        "run-s", es_hosts=tls_es.url, verify_certs=False, flush_interval=0.05
    )
    assert "does not verify HTTPS certificates" in reports.text
    with warnings.catch_warnings():
        # The client warns that verify_certs=False is insecure: expected, that is the point.
        warnings.simplefilter("ignore")
        memory = _write(handler)
    assert ids_of(tls_es.documents("workflow-traces").values()) == ids_of(memory.records)


# -- no feedback -------------------------------------------------------------------------------
def test_client_library_logs_never_feed_back(es: LocalElasticsearch) -> None:
    """Our handler on the root logger, the client libraries logging at DEBUG: only our own
    records reach Elasticsearch, and a failing sink's reports do not loop."""
    handler = ElasticsearchHandler(
        "run-s", es_hosts=es.url, flush_interval=0.05, retry=fast_retry()
    )
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    names = ("elastic_transport", "urllib3", "elasticsearch", "workflow_traces")
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        app = logging.getLogger("app.feedback")
        for i in range(20):
            app.info("app record %d", i)
        handler.flush()
        es.fail_requests(2, 503)  # failures make the sink report on workflow_traces
        for i in range(5):
            app.info("more %d", i)
        handler.flush()
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        for name in names:
            logging.getLogger(name).setLevel(logging.NOTSET)
        handler.close()
    docs = es.documents("workflow-traces").values()
    assert {d["log"]["logger"] for d in docs} == {"app.feedback"}
    assert len(docs) == 25
    assert es.bulk_operations <= 25 + 5 * 2  # no growing stream of our own requests' logs


def test_credentials_over_plain_http_are_reported(reports: Reports) -> None:
    handler = ElasticsearchHandler(
        "run-s", es_hosts="http://es.example.com:9200", username="u", password=SECRET
    )
    handler.close()
    assert "sends credentials over plain http" in reports.text
    assert SECRET not in reports.text
    local = ElasticsearchHandler("run-s", es_hosts="http://127.0.0.1:9", username="u", password="p")
    local.close()
    assert reports.text.count("plain http") == 1  # this machine is not reported
