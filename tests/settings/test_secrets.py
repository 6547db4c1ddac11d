"""Secrets (api_key, password, header values, tokens) never appear in repr, str, model dumps,
error messages or log lines. Only the sink that sends them reads the value."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest
from diagnostics_support import Reports
from settings_helpers import SECRET, SECRET2, config_error

from workflow_traces import ConfigError, TraceSettings, get_trace
from workflow_traces.settings.effective import resolve


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A REST sink whose api_key and header come from the environment, and an Elasticsearch
    sink whose password comes from the secrets directory."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TRACE_HANDLERS__1__PASSWORD").write_text(SECRET2 + "\n")
    port = closed_port()
    monkeypatch.setenv("TRACE_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "restapi")
    monkeypatch.setenv("TRACE_HANDLERS__0__API_URL", f"http://127.0.0.1:{port}/logs")
    monkeypatch.setenv("TRACE_HANDLERS__0__API_KEY", SECRET)
    monkeypatch.setenv("TRACE_HANDLERS__0__HEADERS", json.dumps({"X-Token": SECRET}))
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "elasticsearch")
    monkeypatch.setenv("TRACE_HANDLERS__1__ES_HOSTS", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TRACE_HANDLERS__1__USERNAME", "elastic")
    return secrets


def assert_hidden(text: str) -> None:
    assert SECRET not in text
    assert SECRET2 not in text


def test_secrets_are_read_but_never_shown(secret_env: Path) -> None:
    s = TraceSettings.load()
    rest, es = s.handlers
    # The sinks can read them...
    assert rest.api_key is not None and rest.api_key.get_secret_value() == SECRET
    assert rest.headers["X-Token"].get_secret_value() == SECRET
    assert es.password is not None and es.password.get_secret_value() == SECRET2
    # ...and nothing else shows them.
    for text in (
        repr(s),
        str(s),
        repr(s.model_dump()),
        s.model_dump_json(),
        json.dumps(s.model_dump(mode="json")),
        repr(rest),
        repr(es),
        repr(s.origins),
        repr(resolve(s)),
    ):
        assert_hidden(text)
    assert "**********" in s.model_dump_json()


def test_secrets_are_wrapped_before_validation(
    secret_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-settings logs every source's raw values when PYDANTIC_SETTINGS_DEBUG is set:
    ours holds secrets as SecretStr already, so even that log shows none."""
    monkeypatch.setenv("PYDANTIC_SETTINGS_DEBUG", "1")
    reports = Reports()
    logger = logging.getLogger("pydantic_settings")
    old = logger.level
    logger.addHandler(reports)
    logger.setLevel(logging.DEBUG)
    try:
        TraceSettings()
    finally:
        logger.removeHandler(reports)
        logger.setLevel(old)
    assert_hidden("\n".join(reports.messages))


def test_secret_of_the_wrong_type_is_masked_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TRACE_HANDLERS",
        json.dumps([{"type": "restapi", "api_url": "http://127.0.0.1:1", "api_key": [SECRET]}]),
    )
    message = config_error()
    assert message == "TRACE_HANDLERS[0].api_key: expected text, got **********"


def test_secret_next_to_an_error_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "restapi")
    monkeypatch.setenv("TRACE_HANDLERS__0__API_URL", "http://127.0.0.1:1/logs")
    monkeypatch.setenv("TRACE_HANDLERS__0__API_KEY", SECRET)
    monkeypatch.setenv("TRACE_HANDLERS__0__PASSWROD", SECRET2)  # a typo'd key: value not shown
    monkeypatch.setenv("TRACE_HANDLERS__0__TIMEOUT", "-1")
    message = config_error()
    assert_hidden(message)
    assert (
        "TRACE_HANDLERS__0__PASSWROD: unknown key (did you mean TRACE_HANDLERS__0__PASSWORD?)"
        in (message)
    )
    assert "TRACE_HANDLERS__0__TIMEOUT: must be > 0, got -1" in message


def test_secret_in_extras_is_not_shown_in_errors() -> None:
    extras = {
        "trace_type": "multi",
        "handlers": [
            {"type": "restapi", "api_url": "http://127.0.0.1:1", "api_key": SECRET, "timeout": 0},
            {"type": "elasticsearch", "password": {"nested": SECRET2}},
        ],
    }
    with pytest.raises(ConfigError) as info:
        get_trace("r1", extras=extras)
    message = str(info.value)
    assert_hidden(message)
    assert "handlers[0].timeout: must be > 0, got 0" in message
    assert "handlers[1].password: expected text, got **********" in message


@pytest.mark.network
def test_secrets_absent_from_log_lines(secret_env: Path, reports: Reports) -> None:
    """Both sinks point at a closed port on 127.0.0.1: they fail, and say so in the
    workflow_traces log, without a secret."""
    trace = get_trace("r1")
    try:
        trace.info("hello")
        trace.flush(timeout=1)
        assert_hidden(repr(trace))
        assert_hidden(repr(trace.handler))
        assert_hidden(repr(trace.health()))
        for handler in trace.handler.handlers:
            assert_hidden(getattr(handler, "name", "") or "")
    finally:
        trace.close(timeout=1)
    assert reports.messages, "the failing sinks said nothing"
    assert_hidden("\n".join(reports.messages))
    for record in reports.records:
        if record.exc_info:
            assert_hidden(logging.Formatter().formatException(record.exc_info))
