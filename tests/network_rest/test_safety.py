"""No feedback from client libraries' loggers, no secrets in names, reprs, errors or reports,
HTTPS verified by default, an injectable transport, and configuration through get_trace."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rest_helpers import AWS, FAST, logs_client, messages

from workflow_traces import MultiHandler, RestAPIHandler, SinkError, get_trace
from workflow_traces import diagnostics as _diagnostics
from workflow_traces.settings.config import validate_handler

pytestmark = pytest.mark.network


class _Names(logging.Handler):
    """Collects the logger names of what reaches the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.names.append(record.name)


def test_client_library_loggers_never_feed_back(receivers: Any, moto_url: str) -> None:
    receiver = receivers("generic")
    rest = RestAPIHandler("run-fb", api_url=receiver.url, flush_interval=0.05)
    cloudwatch = RestAPIHandler(
        "run-fb",
        api_url=moto_url,
        service_type="cloudwatch",
        log_group="feedback",
        flush_interval=0.05,
        **AWS,
    )
    multi = MultiHandler("run-fb", handlers=[rest, cloudwatch])
    names = _Names()
    root = logging.getLogger()
    old_level = root.level
    # moto's server runs inside this test process and logs every request it serves through
    # werkzeug and its own loggers: that is the test server talking, not a client library of
    # the sink, so it is kept out of the root logger here.
    quiet = [logging.getLogger(n) for n in ("werkzeug", "moto")]
    old_propagate = [q.propagate for q in quiet]
    for q in quiet:
        q.propagate = False
    root.setLevel(logging.DEBUG)
    root.addHandler(names)
    root.addHandler(multi)
    try:
        app = logging.getLogger("app.feedback")
        for i in range(100):
            app.info("m%d", i)
        multi.flush(20)
        time.sleep(0.5)  # room for a feedback loop to show itself
        multi.flush(20)
    finally:
        root.removeHandler(multi)
        root.removeHandler(names)
        root.setLevel(old_level)
        for q, old in zip(quiet, old_propagate, strict=True):
            q.propagate = old
        multi.close(timeout=10)
    # The libraries did log at DEBUG through the root logger while the sinks were sending...
    assert any(n.startswith("httpx") for n in names.names)
    assert any(n.startswith("httpcore") for n in names.names)
    assert any(n.startswith("botocore") for n in names.names)
    # ...and none of it came back: each sink received exactly the application's 100 records.
    assert sorted(messages(receiver), key=lambda m: int(m[1:])) == [f"m{i}" for i in range(100)]
    assert len(set(receiver.record_ids())) == 100
    events = logs_client(moto_url).get_log_events(
        logGroupName="feedback", logStreamName="run-fb", startFromHead=True
    )["events"]
    assert len(events) == 100


def test_no_secret_in_name_repr_config_or_errors(
    receivers: Any, sinks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler = RestAPIHandler(
        "run-s",
        api_url="https://user:PASSWORD1@logs.example.com/api/v2/logs?dd-api-key=QUERYKEY",
        api_key="APIKEY1",
        service_type="datadog",
        headers={"X-Extra": "HEADERVAL"},
    )
    try:
        shown = " ".join([handler.name, repr(handler), handler.api_url, str(handler.health())])
        assert handler.name == "restapi:datadog:https://logs.example.com/api/v2/logs"
    finally:
        handler.close(timeout=1)
    cfg = validate_handler(
        {
            "type": "restapi",
            "api_url": "http://x/y",
            "api_key": "APIKEY1",
            "password": "PASSWORD1",
            "headers": {"Authorization": "HEADERVAL"},
            "service_type": "cloudwatch",
            "aws_secret_access_key": "AWSSECRET",
        }
    )
    shown += repr(cfg) + str(cfg)
    for secret in ("PASSWORD1", "QUERYKEY", "APIKEY1", "HEADERVAL", "AWSSECRET"):
        assert secret not in shown

    # Errors and reports name the sink without the query's key.
    receiver = receivers("generic", statuses=[400])
    url = receiver.url + "?token=QUERYSECRET"
    _diagnostics._last.clear()
    with caplog.at_level(logging.DEBUG, logger="workflow_traces"):
        failing, logger = sinks(api_url=url, api_key="APIKEY2", fail_silently=False, **FAST)
        logger.info("m0")
        with pytest.raises(SinkError) as info:
            failing.flush(10)
        receiver.down()
        logger.info("m1")
        with pytest.raises(SinkError) as down:
            failing.flush(10)
    text = " ".join(
        [str(info.value), str(down.value), str(failing.health()), caplog.text, failing.name]
    )
    assert "HTTP 400" in text and "service unavailable" in text
    assert "QUERYSECRET" not in text and "APIKEY2" not in text


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_is_verified_unless_turned_off_explicitly(
    receivers: Any, sinks: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver = receivers("generic", ssl_context=context)
    assert receiver.url.startswith("https://")

    default, logger = sinks(api_url=receiver.url, max_retries=0, **FAST)
    logger.info("m-default")
    default.flush(10)
    health = default.health()
    assert health.written == 0 and health.circuit_open and health.failed == 0
    assert "CERTIFICATE_VERIFY_FAILED" in (health.last_error or "")

    trusted, logger2 = sinks(api_url=receiver.url, ca_certs=str(cert), **FAST)
    logger2.info("m-trusted")
    trusted.flush(10)
    assert trusted.health().written == 1

    _diagnostics._last.clear()
    with caplog.at_level(logging.WARNING, logger="workflow_traces"):
        unverified, logger3 = sinks(api_url=receiver.url, verify=False, **FAST)
    logger3.info("m-unverified")
    unverified.flush(10)
    assert unverified.health().written == 1
    assert "does not verify HTTPS certificates" in caplog.text
    assert messages(receiver) == ["m-trusted", "m-unverified"]


def test_transport_is_injectable() -> None:
    import httpx

    seen: list[httpx.Request] = []
    answers = iter([500, 202])

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers, 202))

    handler = RestAPIHandler(
        "run-t",
        api_url="https://intake.example.invalid/api/v2/logs",
        api_key="k",
        service_type="datadog",
        transport=httpx.MockTransport(reply),
        **FAST,
    )
    logger = logging.getLogger("tests.network_rest.transport")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("hello")
        handler.flush(10)
    finally:
        logger.removeHandler(handler)
        handler.close(timeout=5)
    assert len(seen) == 2  # the 500 was retried
    assert seen[1].headers["DD-API-KEY"] == "k"
    assert handler.health().written == 1


def test_configured_through_get_trace(receivers: Any) -> None:
    receiver = receivers("grafana")
    trace = get_trace(
        "run-cfg",
        extras={
            "trace_type": "multi",
            "fail_silently": False,
            "environment": "dev",
            "workflow_name": "wf",
            "handlers": [
                {
                    "type": "restapi",
                    "service_type": "grafana",
                    "api_url": receiver.base_url,
                    "flush_interval": 0.05,
                    "labels": {"team": "ops"},
                }
            ],
        },
    )
    try:
        trace.info("configured")
        trace.flush(10)
    finally:
        trace.close(10)
    (record,) = receiver.records()
    assert record["line"] == "configured"
    assert record["labels"] == {
        "service": "workflow-traces",
        "environment": "dev",
        "team": "ops",
        "workflow": "wf",
        "level": "info",
    }
    assert record["metadata"]["run_id"] == "run-cfg"


def test_import_stays_light() -> None:
    code = (
        "import sys, workflow_traces as w; w.RestAPIHandler; "
        "assert 'httpx' not in sys.modules and 'botocore' not in sys.modules, sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
