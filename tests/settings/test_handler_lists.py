"""Handler lists from the environment: as JSON (TRACE_HANDLERS) and as indexed variables
(TRACE_HANDLERS__0__TYPE), alone, together and across sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from settings_helpers import assert_clean, config_error, write_env

from workflow_traces import TraceSettings
from workflow_traces.settings.config import (
    ElasticsearchConfig,
    FileConfig,
    RestAPIConfig,
    SQLiteConfig,
)
from workflow_traces.settings.effective import resolve


def test_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TRACE_HANDLERS",
        '[{"type":"file","path":"./logs"},{"type":"sqlite","path":"./t.db","buffer_size":7}]',
    )
    s = TraceSettings.load()
    assert [type(h) for h in s.handlers] == [FileConfig, SQLiteConfig]
    assert s.handlers[1].path == "./t.db"
    assert s.handlers[1].buffer_size == 7
    assert s.origins[("handlers", 1, "buffer_size")].name(("handlers", 1, "buffer_size")) == (
        "TRACE_HANDLERS[1].buffer_size"
    )
    assert resolve(s).trace_type == "multi"  # handlers given, no trace type: multi


def test_indexed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", "./logs/t.db")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__1__BUFFER_SIZE", "100")
    monkeypatch.setenv("TRACE_HANDLERS__1__FLUSH_INTERVAL", "0.5")
    s = TraceSettings.load()
    assert [h.type for h in s.handlers] == ["sqlite", "file"]
    assert s.handlers[0].path == "./logs/t.db"
    assert (s.handlers[1].buffer_size, s.handlers[1].flush_interval) == (100, 0.5)
    assert s.origins[("handlers", 1, "buffer_size")].var == "TRACE_HANDLERS__1__BUFFER_SIZE"


def test_ten_or_more_handlers_keep_numeric_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        monkeypatch.setenv(f"TRACE_HANDLERS__{i}__TYPE", "file")
        monkeypatch.setenv(f"TRACE_HANDLERS__{i}__PATH", f"./logs/{i}")
    s = TraceSettings.load()
    assert [h.path for h in s.handlers] == [f"./logs/{i}" for i in range(12)]


def test_indexed_variable_refines_a_json_list_of_a_lower_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = [{"type": "file", "path": "./a"}, {"type": "sqlite", "path": "./b.db"}]
    write_env(tmp_path / ".env", f"TRACE_HANDLERS='{json.dumps(handlers)}'")
    monkeypatch.setenv("TRACE_HANDLERS__1__PATH", "./override.db")
    s = TraceSettings.load()
    assert [(h.type, h.path) for h in s.handlers] == [("file", "./a"), ("sqlite", "./override.db")]
    assert s.origins[("handlers", 1, "path")].source == "environment"
    assert s.origins[("handlers", 1, "type")].source == ".env file"


def test_indexed_variables_refine_a_json_list_of_the_same_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type":"file"}]')
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", "./refined")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    s = TraceSettings.load()
    assert [(h.type, h.path) for h in s.handlers] == [
        ("file", "./refined"),
        ("sqlite", "./logs/workflow_traces.db"),
    ]


def test_json_list_of_a_higher_source_replaces_lower_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(
        tmp_path / ".env",
        "TRACE_HANDLERS__0__TYPE=sqlite\nTRACE_HANDLERS__1__TYPE=file\nTRACE_HANDLERS__1__PATH=./x",
    )
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type":"file","path":"./only"}]')
    s = TraceSettings.load()
    assert [(h.type, h.path) for h in s.handlers] == [("file", "./only")]


def test_one_handler_as_a_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0", '{"type": "sqlite", "path": "./one.db"}')
    monkeypatch.setenv("TRACE_HANDLERS__0__BUFFER_SIZE", "9")
    s = TraceSettings.load()
    assert (s.handlers[0].type, s.handlers[0].path, s.handlers[0].buffer_size) == (
        "sqlite",
        "./one.db",
        9,
    )


def test_list_valued_key_as_json_in_an_indexed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "elasticsearch")
    monkeypatch.setenv("TRACE_HANDLERS__0__ES_HOSTS", '["http://a:9200", "http://b:9200"]')
    s = TraceSettings.load()
    assert isinstance(s.handlers[0], ElasticsearchConfig)
    assert s.handlers[0].es_hosts == ["http://a:9200", "http://b:9200"]


def test_nested_dict_key_in_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "restapi")
    monkeypatch.setenv("TRACE_HANDLERS__0__API_URL", "http://127.0.0.1:1/logs")
    monkeypatch.setenv("TRACE_HANDLERS__0__LABELS", '{"team": "data"}')
    s = TraceSettings.load()
    assert isinstance(s.handlers[0], RestAPIConfig)
    assert s.handlers[0].labels == {"team": "data"}


def test_default_paths_fill_handlers_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_PATH", "./file-default")
    monkeypatch.setenv("TRACE_SQLITE_PATH", "./db-default.db")
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type":"file"},{"type":"sqlite"}]')
    s = TraceSettings.load()
    assert [h.path for h in s.handlers] == ["./file-default", "./db-default.db"]
    eff = resolve(s)
    assert eff.origin(("handlers", 0, "path")).var == "TRACE_PATH"
    # Handlers from extras get the same defaults.
    eff = resolve(s, {"handlers": [{"type": "sqlite"}, {"type": "file", "path": "./own"}]})
    assert [h.path for h in eff.handlers] == ["./db-default.db", "./own"]


def test_extras_handlers_replace_settings_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type":"file"},{"type":"sqlite"}]')
    eff = resolve(TraceSettings.load(), {"handlers": [{"type": "sqlite", "path": "./x.db"}]})
    assert eff.trace_type == "multi"
    assert [(h.type, h.path) for h in eff.handlers] == [("sqlite", "./x.db")]
    assert eff.origin(("handlers", 0, "path")).source == "extras"


def test_gap_in_indexes_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__2__TYPE", "sqlite")
    message = config_error()
    assert message == (
        "TRACE_HANDLERS__2__TYPE: handler indexes must run 0, 1, 2, ... without gaps; "
        "nothing sets handler 1 (such as TRACE_HANDLERS__1__TYPE)"
    )


def test_index_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__FIRST__TYPE", "file")
    assert config_error() == (
        "TRACE_HANDLERS__FIRST__TYPE: expected a handler index after TRACE_HANDLERS__, "
        "such as TRACE_HANDLERS__0__TYPE"
    )


def test_invalid_json_names_the_position_not_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type": "restapi", "api_key": "s3cr3t" oops}]')
    message = config_error()
    assert message == (
        "TRACE_HANDLERS: expected a JSON list of handler objects, got invalid JSON "
        "(line 1 column 42)"
    )
    assert "s3cr3t" not in message
    assert_clean(message)


def test_json_of_the_wrong_shape(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", 'TRACE_HANDLERS=\'{"type": "file"}\'')
    assert config_error() == (
        "TRACE_HANDLERS: expected a JSON list of handler objects, got an object (set in .env)"
    )
