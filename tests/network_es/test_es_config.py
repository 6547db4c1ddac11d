"""Configuring the sink: every ElasticsearchConfig key reaches the handler through get_trace,
bad values fail clearly at configuration time, and ``import workflow_traces`` does not load
the client."""

from __future__ import annotations

import subprocess
import sys

import pytest
from es_helpers import ids_of
from local_services import LocalElasticsearch

from workflow_traces import ConfigError, ElasticsearchHandler, get_trace
from workflow_traces.settings.config import ElasticsearchConfig

pytestmark = pytest.mark.network


def test_every_key_has_its_default() -> None:
    cfg = ElasticsearchConfig()
    assert cfg.model_dump() == {
        "type": "elasticsearch",
        "es_hosts": "http://localhost:9200",
        "index_name": "workflow-traces",
        "username": None,
        "password": None,
        "buffer_size": 100,
        "flush_interval": 2.0,
        "timeout": 30.0,
        "max_retries": 3,
        "api_key": None,
        "ca_certs": None,
        "verify_certs": True,
        "data_stream": False,
        "http_compress": False,
        "service_name": None,
        "manage_index": True,
        "queue_size": 200_000,
        "queue_bytes": 32 << 20,
        "overflow": "drop",
        "block_timeout": 1.0,
        "level": "DEBUG",
        "redact": True,
        "redact_keys": None,
        "redact_patterns": None,
        "sample": None,
        "max_records_per_second": None,
        "spool_dir": None,
        "spool_max_bytes": 256 * 1024 * 1024,
        "retry_base_delay": 0.5,
        "retry_max_delay": 30.0,
    }


def test_get_trace_builds_the_handler_from_extras(es: LocalElasticsearch) -> None:
    trace = get_trace(
        "run-cfg",
        extras={
            "trace_type": "multi",
            "fail_silently": False,
            "workflow_name": "cfg-flow",
            "handlers": [
                {
                    "type": "elasticsearch",
                    "es_hosts": [es.url],
                    "index_name": "cfg-index",
                    "buffer_size": 7,
                    "flush_interval": 0.05,
                    "timeout": 5,
                    "max_retries": 1,
                    "http_compress": True,
                    "service_name": "billing",
                    "level": "INFO",
                }
            ],
        },
    )
    handler = trace.handler.get_handler_by_type(ElasticsearchHandler)
    assert handler is not None
    assert (handler.index_name, handler.buffer_size, handler.timeout) == ("cfg-index", 7, 5)
    assert handler.max_retries == 1
    assert handler.level == 20
    trace.debug("not written: below INFO")
    trace.info("written")
    trace.event("workflow", "started", name="cfg-flow")
    trace.close()
    docs = list(es.documents("cfg-index").values())
    assert sorted(d["message"] for d in docs) == ["workflow 'cfg-flow' started", "written"]
    assert {d["service"]["name"] for d in docs} == {"billing"}
    assert all(
        r.headers.get("content-encoding") == "gzip" for r in es.requests if "_bulk" in r.path
    )
    assert ids_of(docs)


def test_data_stream_from_config(es: LocalElasticsearch) -> None:
    trace = get_trace(
        "run-ds",
        extras={
            "trace_type": "multi",
            "handlers": [
                {
                    "type": "elasticsearch",
                    "es_hosts": es.url,
                    "index_name": "logs-traces-prod",
                    "data_stream": True,
                    "flush_interval": 0.05,
                }
            ],
        },
    )
    trace.info("into the stream")
    trace.close()
    assert es.data_streams() == ["logs-traces-prod"]
    assert [d["message"] for d in es.documents("logs-traces-prod").values()] == ["into the stream"]


def test_no_index_creation_when_not_managed(es: LocalElasticsearch) -> None:
    handler = ElasticsearchHandler(
        "run-m",
        es_hosts=es.url,
        index_name="made-elsewhere",
        manage_index=False,
        flush_interval=0.05,
    )
    handler.handle(_record("hello"))
    handler.close()
    paths = [(r.method, r.path) for r in es.requests]
    assert paths == [("PUT", "/made-elsewhere/_bulk")]  # auto-created by the bulk itself
    assert len(es.documents("made-elsewhere")) == 1


def _record(message: str) -> object:
    import logging

    return logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("index_name", "Upper", "index_name: must be lowercase"),
        ("index_name", "a b", "index_name: must not contain"),
        ("index_name", "_x", "index_name: must not start with"),
        ("es_hosts", "ftp://host", "es_hosts: expected http(s)://host:port"),
        ("es_hosts", "", "es_hosts: at least one Elasticsearch URL"),
        ("ca_certs", "/no/such/ca.pem", "ca_certs: no such file"),
        ("password", "x", "username: is required when a password is given"),
        ("timeout", 0, "timeout: must be > 0"),
    ],
)
def test_bad_values_fail_at_configuration(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        get_trace(
            "run-bad",
            extras={
                "trace_type": "multi",
                "fail_silently": False,
                "handlers": [{"type": "elasticsearch", key: value}],
            },
        )
    assert expected in str(caught.value)
    assert str(caught.value).startswith("handlers[0].")


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        get_trace(
            "run-bad",
            extras={
                "trace_type": "multi",
                "fail_silently": False,
                "handlers": [{"type": "elasticsearch", "data_streem": True}],
            },
        )
    assert "data_stream" in str(caught.value)


def test_import_does_not_load_the_client() -> None:
    code = (
        "import sys, workflow_traces\n"
        "assert 'elasticsearch' not in sys.modules, 'elasticsearch imported'\n"
        "assert 'elastic_transport' not in sys.modules\n"
        "h = workflow_traces.ElasticsearchHandler\n"
        "assert 'elasticsearch' not in sys.modules, 'handler class imports the client'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
