"""Redaction's settings: TRACE_REDACT_KEYS / TRACE_REDACT_PATTERNS for every sink, the per-sink
override, ``config show``, bad patterns as ConfigErrors naming the pattern, and the Redactor's
own rules. Real SQLite files; the environment is set with monkeypatch."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_traces import get_trace
from workflow_traces.core.record import F_MESSAGE, Record
from workflow_traces.errors import ConfigError
from workflow_traces.pipeline.redact import (
    DEFAULT_REDACT_KEYS,
    DEFAULT_REDACT_PATTERNS,
    REDACTED,
    Redactor,
)
from workflow_traces.settings.config import validate_handler
from workflow_traces.settings.model import TraceSettings


@pytest.fixture(autouse=True)
def _fresh_settings() -> None:
    TraceSettings.clear_cache()


def _messages(db: Path) -> list[str]:
    return [r[0] for r in sqlite3.connect(db).execute("SELECT message FROM trace_records")]


def _extras(db: Path) -> list[dict[str, object]]:
    rows = sqlite3.connect(db).execute("SELECT extras FROM trace_records").fetchall()
    return [json.loads(r[0]) for r in rows if r[0]]


def test_trace_redact_settings_apply_to_every_sink_unless_it_sets_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACE_REDACT_KEYS", "ssn, card")
    monkeypatch.setenv("TRACE_REDACT_PATTERNS", r'["order-\\d{4}"]')
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    trace = get_trace(
        run_id="settings-run",
        extras={
            "handlers": [
                {"type": "sqlite", "path": str(a)},
                {"type": "sqlite", "path": str(b), "redact_patterns": ["secret-\\w+"]},
            ],
            "customer_SSN": "123-45-6789",
        },
    )
    trace.info("order-1234 for secret-abc")
    trace.close()
    assert _messages(a) == [
        f"{REDACTED} for secret-abc"
    ]  # the settings' pattern replaced the defaults
    assert _messages(b) == [f"order-1234 for {REDACTED}"]  # the sink's own
    for db in (a, b):
        assert all(e.get("customer_SSN") == REDACTED for e in _extras(db))


def test_a_bad_pattern_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        validate_handler({"type": "sqlite", "path": "x.db", "redact_patterns": ["ok", "(un"]})
    assert "redact_patterns" in str(info.value) and "'(un'" in str(info.value)
    monkeypatch.setenv("TRACE_REDACT_PATTERNS", '["[a-"]')
    with pytest.raises(ConfigError) as info:
        TraceSettings()
    assert "TRACE_REDACT_PATTERNS" in str(info.value) and "'[a-'" in str(info.value)


def test_config_show_lists_the_redaction_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "TRACE_REDACT_KEYS": '["ssn"]',
        "TRACE_HANDLERS": '[{"type": "sqlite", "sample": {"DEBUG": 0.5}}]',
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = subprocess.run(
        [sys.executable, "-m", "workflow_traces.cli.main", "config", "show", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {r["key"]: r for r in json.loads(out)["values"]}
    assert rows["redact_keys"]["variable"] == "TRACE_REDACT_KEYS"
    assert rows["redact_keys"]["value"] == ["ssn"]
    assert rows["handlers[0].sample"]["value"] == {"DEBUG": 0.5}
    assert rows["handlers[0].redact"]["value"] is True


def test_the_redactor_rules() -> None:
    r = Redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS)
    assert r.text("plain words, nothing here") == "plain words, nothing here"
    assert r.text("https://bob:pw@host/x") == f"https://{REDACTED}@host/x"
    assert r.text("see https://host/path@v2") == "see https://host/path@v2"  # no credentials
    extras = {"X-Api_Key": "v", "n": {"Session-Cookie": "c", "ok": 1}, "l": ["Bearer abc"]}
    out = r.mapping(extras)
    assert out == {
        "X-Api_Key": REDACTED,
        "n": {"Session-Cookie": REDACTED, "ok": 1},
        "l": [REDACTED],
    }
    assert extras["X-Api_Key"] == "v"  # never changed in place: every sink shares the record
    same = {"count": 3}
    assert r.mapping(same) is same
    # Patterns that cannot share one regex still work, one after another.
    many = Redactor((), ("(?i)abc", "x(?P<g>y)", "(?P<g>z)q"))
    assert many.text("ABC xy zq") == f"{REDACTED} {REDACTED} {REDACTED}"
    # An anchored pattern is looked for record by record, not in the batch's joined messages.
    anchored = Redactor((), ("^secret",))
    plain = Record(
        time_ns=0, level="INFO", levelno=20, message="m", run_id="r", parent_run_id=None,
        workflow_name=None, job_name=None, stage_name=None, filename=None, lineno=None,
        func_name=None, process=1, thread=1, host="h", record_id="x-1",
    )  # fmt: skip
    batch = [tuple(plain), tuple(plain._replace(message="secret word"))]
    assert anchored.batch(batch)[1][F_MESSAGE] == f"{REDACTED} word"


def test_a_handler_made_in_code_redacts_with_the_defaults(tmp_path: Path) -> None:
    from workflow_traces import SQLiteHandler

    db = tmp_path / "code.db"
    handler = SQLiteHandler("code-run", db_path=str(db))
    logger = logging.getLogger("tests.redact.code")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("token ghp_%s", "c" * 36, extra={"session_cookie": "c00kie"})
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert _messages(db) == [f"token {REDACTED}"]
    assert _extras(db)[0]["session_cookie"] == REDACTED


def test_redact_false_from_an_indexed_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "env.db"
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", str(db))
    monkeypatch.setenv("TRACE_HANDLERS__0__REDACT", "false")
    monkeypatch.setenv("TRACE_HANDLERS__0__SAMPLE", '{"DEBUG": 0}')
    trace = get_trace("env-run")
    trace.debug("left out")
    trace.info("Bearer kept-as-is")
    trace.close()
    assert _messages(db) == ["Bearer kept-as-is"]
    assert next(iter(trace.health().values())).sampled == 1
