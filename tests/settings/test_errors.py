"""The errors users see: one line per problem naming the variable (or key), the value given and
what was expected; unknown handler types list the valid ones; unknown keys get the closest valid
key suggested; never pydantic's own dump. The same typo fails the same way from code and from
the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from settings_helpers import assert_clean, config_error, write_env

from workflow_traces import ConfigError, TraceSettings, get_trace
from workflow_traces.exporters import registry

# The built-in types first, in this order (pinned in test_registry), then installed plugins'.
VALID_TYPES = f"valid types: {', '.join(registry.types())}"
FILE_KEYS = (
    "valid keys: block_timeout, buffer_size, flush_interval, level, max_records_per_second, "
    "overflow, path, queue_bytes, queue_size, redact, redact_keys, redact_patterns, sample"
)


def get_trace_error(extras: dict[str, object] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        get_trace("r1", extras=extras)
    message = str(info.value)
    assert_clean(message)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return message


# -- from the environment --------------------------------------------------------------------------
def test_bad_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__1__BUFFER_SIZE", "-5")
    assert config_error() == "TRACE_HANDLERS__1__BUFFER_SIZE: must be > 0, got -5"
    assert get_trace_error() == "TRACE_HANDLERS__1__BUFFER_SIZE: must be > 0, got -5"


def test_bad_number_inside_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type":"file"},{"type":"sqlite","buffer_size":-5}]')
    assert config_error() == "TRACE_HANDLERS[1].buffer_size: must be > 0, got -5"


def test_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__FLUSH_INTERVAL", "soon")
    assert config_error() == "TRACE_HANDLERS__0__FLUSH_INTERVAL: expected a number, got soon"


def test_not_a_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_FAIL_SILENTLY", "maybe")
    assert config_error() == "TRACE_FAIL_SILENTLY: expected true or false, got maybe"


def test_bad_trace_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_TYPE", "multy")
    assert config_error() == "TRACE_TYPE: expected 'file', 'sqlite' or 'multi', got multy"


def test_unknown_handler_type_lists_the_valid_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "kafka")
    assert config_error() == f"TRACE_HANDLERS__0__TYPE: unknown handler type kafka; {VALID_TYPES}"


def test_unknown_handler_type_in_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type": "kafka"}]')
    assert config_error() == f"TRACE_HANDLERS[0].type: unknown handler type 'kafka'; {VALID_TYPES}"


def test_missing_handler_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", "./x")
    assert config_error() == f"TRACE_HANDLERS__0__TYPE: is required; {VALID_TYPES}"


def test_unknown_handler_key_suggests_the_closest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__BUFER_SIZE", "10")
    assert config_error() == (
        "TRACE_HANDLERS__0__BUFER_SIZE: unknown key (did you mean "
        f"TRACE_HANDLERS__0__BUFFER_SIZE?); {FILE_KEYS}"
    )


def test_unknown_key_inside_json_suggests_in_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", '[{"type": "file", "flush_intervall": 1}]')
    assert config_error() == (
        "TRACE_HANDLERS[0].flush_intervall: unknown key (did you mean "
        f"TRACE_HANDLERS[0].flush_interval?); {FILE_KEYS}"
    )


def test_unknown_variable_suggests_the_closest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_FAIL_SILENTY", "true")
    assert config_error() == "TRACE_FAIL_SILENTY: unknown key (did you mean TRACE_FAIL_SILENTLY?)"


def test_unknown_variable_without_a_close_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_BANANA", "1")
    assert config_error() == "TRACE_BANANA: unknown key"


def test_error_in_a_file_says_which_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(
        tmp_path / ".env.production",
        "TRACE_HANDLERS__0__TYPE=file\nTRACE_HANDLERS__0__QUEUE_SIZE=0",
    )
    monkeypatch.setenv("TRACE_PROFILE", "production")
    assert config_error() == (
        "TRACE_HANDLERS__0__QUEUE_SIZE: must be > 0, got 0 (set in .env.production)"
    )


def test_every_problem_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__BUFFER_SIZE", "0")
    monkeypatch.setenv("TRACE_HANDLERS__0__OVERFLOW", "spill")
    monkeypatch.setenv("TRACE_JOB_NAMES", "x")
    assert config_error().splitlines() == [
        "TRACE_HANDLERS__0__BUFFER_SIZE: must be > 0, got 0",
        "TRACE_HANDLERS__0__OVERFLOW: expected 'block' or 'drop', got spill",
        "TRACE_JOB_NAMES: unknown key (did you mean TRACE_JOB_NAME?)",
    ]


def test_missing_profile_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_PROFILE", "nope")
    assert config_error() == (
        f"TRACE_PROFILE: no profile file .env.nope for profile 'nope' (looked in {tmp_path})"
    )


def test_profile_name_cannot_be_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_PROFILE", "../etc/x")
    assert config_error() == (
        "TRACE_PROFILE: expected a name of letters, digits, '.', '_' or '-', got '../etc/x'"
    )


def test_alias_and_long_name_disagreeing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_TYPE", "file")
    monkeypatch.setenv("TRACE_TRACE_TYPE", "sqlite")
    assert config_error() == (
        "TRACE_TYPE: conflicts with TRACE_TRACE_TYPE in the same source; set only one of them"
    )


def test_multi_without_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_TYPE", "multi")
    assert get_trace_error().startswith("handlers: trace_type 'multi' needs at least one handler; ")


def test_unwritable_path_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("TRACE_FAIL_SILENTLY", "false")
    monkeypatch.setenv("TRACE_PATH", str(tmp_path / "a-file" / "logs"))
    assert get_trace_error().startswith("TRACE_PATH: cannot create folder ")
    monkeypatch.delenv("TRACE_PATH")
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", str(tmp_path / "a-file" / "logs"))
    assert get_trace_error().startswith("TRACE_HANDLERS__0__PATH: cannot create folder ")


def test_arguments_are_named_as_keys() -> None:
    with pytest.raises(ConfigError) as info:
        TraceSettings(handlers=[{"type": "file", "buffer_size": -1}])
    assert str(info.value) == "handlers[0].buffer_size: must be > 0, got -1"


# -- from extras: the same models, named as keys --------------------------------------------------
def test_extras_bad_number() -> None:
    extras = {
        "trace_type": "multi",
        "handlers": [{"type": "file"}, {"type": "sqlite", "buffer_size": -5}],
    }
    assert get_trace_error(extras) == "handlers[1].buffer_size: must be > 0, got -5"


def test_extras_unknown_type() -> None:
    extras = {"trace_type": "multi", "handlers": [{"type": "kafka"}]}
    assert get_trace_error(extras) == (
        f"handlers[0].type: unknown handler type 'kafka'; {VALID_TYPES}"
    )


def test_extras_unknown_handler_key() -> None:
    extras = {"trace_type": "multi", "handlers": [{"type": "file", "bufer_size": 1}]}
    assert get_trace_error(extras) == (
        f"handlers[0].bufer_size: unknown key (did you mean 'buffer_size'?); {FILE_KEYS}"
    )


def test_extras_top_level_typo() -> None:
    assert get_trace_error({"fail_silenty": True}) == (
        "fail_silenty: unknown key (did you mean 'fail_silently'?)"
    )


def test_extras_single_type_keys() -> None:
    assert get_trace_error({"trace_type": "sqlite", "buffer_size": 0}) == (
        "buffer_size: must be > 0, got 0"
    )


def test_extras_user_keys_are_not_typos() -> None:
    trace = get_trace("r1", extras={"team": "data", "workflow": "w", "tenant_id": 3})
    try:
        assert trace.extras["team"] == "data"
    finally:
        trace.close()


def test_same_typo_fails_the_same_way_from_code_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from_code = get_trace_error(
        {"trace_type": "multi", "handlers": [{"type": "sqlite", "flush_interval": 0}]}
    )
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__0__FLUSH_INTERVAL", "0")
    from_env = get_trace_error()
    assert from_code == "handlers[0].flush_interval: must be > 0, got 0"
    assert from_env == "TRACE_HANDLERS__0__FLUSH_INTERVAL: must be > 0, got 0"


def test_a_bad_run_id_is_named_as_run_id_not_as_a_handler_key(tmp_path: Path) -> None:
    # An empty run_id given to get_trace means "none" (a new one is made) and a long one gets a
    # shortened folder (tests/core_robustness); text no file name can hold is refused.
    from workflow_traces import MultiHandler

    run_id = "z\ud800"
    expected = "run_id: expected text that encodes as UTF-8, got 'z\\ud800' (lone surrogates)"
    handlers = [{"type": "file", "path": str(tmp_path / "logs")}]
    with pytest.raises(ConfigError) as info:
        get_trace(run_id, extras={"fail_silently": False, "handlers": handlers})
    assert str(info.value) == expected
    with pytest.raises(ConfigError) as info:
        MultiHandler(run_id, handlers=handlers, fail_silently=False)
    assert str(info.value) == expected
    with pytest.raises(ConfigError) as info:
        MultiHandler("", handlers=handlers, fail_silently=False)
    assert str(info.value) == "run_id: expected a non-empty string, got ''"
