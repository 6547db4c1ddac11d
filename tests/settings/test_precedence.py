"""Every source and its precedence: default < .env < profile file < secrets dir < environment
< extras (and arguments to TraceSettings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from settings_helpers import config_error, write_env

from workflow_traces import TraceSettings
from workflow_traces.settings.effective import resolve


def test_defaults_when_nothing_is_set() -> None:
    s = TraceSettings.load()
    assert s.trace_type is None
    assert s.handlers == []
    assert s.fail_silently is True
    assert (s.workflow_name, s.job_name, s.stage_name, s.environment) == (None,) * 4
    assert s.profile is None
    assert s.path == "./logs"
    assert s.sqlite_path == "./logs/workflow_traces.db"
    assert s.origins == {}
    eff = resolve(s)
    assert eff.trace_type == "file"
    assert [(c.type, c.path) for c in eff.handlers] == [("file", "./logs")]
    assert eff.origin(("trace_type",)).source == "default"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", "TRACE_WORKFLOW_NAME=from-dotenv\nTRACE_PATH=./dot-logs")
    s = TraceSettings.load()
    assert s.workflow_name == "from-dotenv"
    assert s.path == "./dot-logs"
    origin = s.origins[("workflow_name",)]
    assert (origin.source, origin.var, origin.file) == (".env file", "TRACE_WORKFLOW_NAME", ".env")


def test_profile_file_overrides_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path / ".env", "TRACE_WORKFLOW_NAME=base\nTRACE_JOB_NAME=base-job")
    write_env(tmp_path / ".env.production", "TRACE_WORKFLOW_NAME=prod")
    monkeypatch.setenv("TRACE_PROFILE", "production")
    s = TraceSettings.load()
    assert s.profile == "production"
    assert s.workflow_name == "prod"
    assert s.job_name == "base-job"  # not in the profile file: the .env value stays
    assert s.origins[("workflow_name",)].source == "profile file"
    assert s.origins[("workflow_name",)].file == ".env.production"
    assert s.origins[("job_name",)].source == ".env file"


def test_profile_named_in_dotenv_itself(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", "TRACE_PROFILE=staging\nTRACE_ENVIRONMENT=base")
    write_env(tmp_path / ".env.staging", "TRACE_ENVIRONMENT=staging")
    assert TraceSettings.load().environment == "staging"


def test_profile_argument_wins_over_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(tmp_path / ".env.a", "TRACE_ENVIRONMENT=a")
    write_env(tmp_path / ".env.b", "TRACE_ENVIRONMENT=b")
    monkeypatch.setenv("TRACE_PROFILE", "a")
    assert TraceSettings.load().environment == "a"
    assert TraceSettings.load(profile="b").environment == "b"


def test_environment_wins_over_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path / ".env", "TRACE_PROFILE=production\nTRACE_WORKFLOW_NAME=base")
    write_env(tmp_path / ".env.production", "TRACE_WORKFLOW_NAME=prod")
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "from-env")
    s = TraceSettings.load()
    assert s.workflow_name == "from-env"
    origin = s.origins[("workflow_name",)]
    assert (origin.source, origin.file) == ("environment", None)


def test_secrets_dir_sits_between_profile_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TRACE_JOB_NAME").write_text("from-secret\n")
    (secrets / "trace_stage_name").write_text("stage-secret")  # names are case-insensitive
    (secrets / "unrelated").write_text("ignored")
    write_env(tmp_path / ".env", "TRACE_JOB_NAME=from-dotenv\nTRACE_WORKFLOW_NAME=from-dotenv")
    monkeypatch.setenv("TRACE_SECRETS_DIR", str(secrets))
    s = TraceSettings.load()
    assert s.job_name == "from-secret"  # a secret file wins over .env
    assert s.stage_name == "stage-secret"
    assert s.workflow_name == "from-dotenv"
    assert s.origins[("job_name",)].source == "secrets dir"
    monkeypatch.setenv("TRACE_JOB_NAME", "from-env")
    assert TraceSettings.load().job_name == "from-env"  # the environment wins over a secret


def test_secrets_dir_given_as_argument(tmp_path: Path) -> None:
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    (secrets / "TRACE_ENVIRONMENT").write_text("from-secret")
    assert TraceSettings.load(secrets_dir=secrets).environment == "from-secret"
    assert TraceSettings(_secrets_dir=str(secrets)).environment == "from-secret"


def test_missing_secrets_dir_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_SECRETS_DIR", "/no/such/dir")
    assert config_error() == "TRACE_SECRETS_DIR: expected a directory, got '/no/such/dir'"


def test_env_file_variable_names_another_base_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    write_env(conf / "tracing.env", "TRACE_WORKFLOW_NAME=from-conf")
    write_env(conf / "tracing.env.prod", "TRACE_ENVIRONMENT=prod")
    monkeypatch.setenv("TRACE_ENV_FILE", str(conf / "tracing.env"))
    monkeypatch.setenv("TRACE_PROFILE", "prod")
    s = TraceSettings.load()
    assert (s.workflow_name, s.environment) == ("from-conf", "prod")
    assert TraceSettings(_env_file=str(conf / "tracing.env")).workflow_name == "from-conf"


def test_arguments_win_over_every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "from-env")
    s = TraceSettings(workflow_name="from-code")
    assert s.workflow_name == "from-code"
    assert s.origins[("workflow_name",)].source == "arguments"


def test_extras_win_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path / ".env", "TRACE_PROFILE=p\nTRACE_WORKFLOW_NAME=dotenv")
    write_env(tmp_path / ".env.p", "TRACE_WORKFLOW_NAME=profile\nTRACE_FAIL_SILENTLY=false")
    monkeypatch.setenv("TRACE_WORKFLOW_NAME", "env")
    monkeypatch.setenv("TRACE_TYPE", "sqlite")
    s = TraceSettings.load()
    eff = resolve(s, {"workflow_name": "extras", "fail_silently": True, "trace_type": "file"})
    assert eff.extras["workflow_name"] == "extras"
    assert eff.fail_silently is True
    assert eff.trace_type == "file"
    assert eff.origin(("workflow_name",)).source == "extras"
    # Without extras, each key comes from the highest source that sets it.
    eff = resolve(s)
    assert eff.extras["workflow_name"] == "env"
    assert eff.fail_silently is False
    assert eff.trace_type == "sqlite"
    assert eff.origin(("fail_silently",)).source == "profile file"


def test_empty_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path / ".env", "TRACE_JOB_NAME=from-dotenv")
    monkeypatch.setenv("TRACE_JOB_NAME", "")
    assert TraceSettings.load().job_name == "from-dotenv"


def test_dotenv_values_are_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_SOMETHING", "expanded")
    write_env(tmp_path / ".env", "TRACE_JOB_NAME='a$b${HOME_SOMETHING}'")
    assert TraceSettings.load().job_name == "a$b${HOME_SOMETHING}"


def test_short_alias_for_trace_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_TYPE", "sqlite")
    s = TraceSettings.load()
    assert s.trace_type == "sqlite"
    assert s.origins[("trace_type",)].var == "TRACE_TYPE"
    monkeypatch.setenv("TRACE_TRACE_TYPE", "sqlite")
    assert TraceSettings.load().trace_type == "sqlite"  # both, same value: fine


def test_long_name_wins_over_alias_from_a_lower_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(tmp_path / ".env", "TRACE_TYPE=sqlite")
    monkeypatch.setenv("TRACE_TRACE_TYPE", "file")
    assert TraceSettings.load().trace_type == "file"


def test_lowercase_variable_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("trace_workflow_name", "lower")
    assert TraceSettings.load().workflow_name == "lower"


def test_test_suite_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_TEST_ES_URL", "http://127.0.0.1:9")
    assert TraceSettings.load().handlers == []


# -- the cache ------------------------------------------------------------------------------------
def test_load_is_cached_while_nothing_changes(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", "TRACE_WORKFLOW_NAME=one")
    first = TraceSettings.load()
    assert TraceSettings.load() is first


def test_load_sees_a_changed_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    write_env(env, "TRACE_WORKFLOW_NAME=one")
    first = TraceSettings.load()
    write_env(env, "TRACE_WORKFLOW_NAME=second-value")  # another size: a new stamp
    assert TraceSettings.load().workflow_name == "second-value"
    assert TraceSettings.load() is not first


def test_load_sees_a_new_profile_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path / ".env", "TRACE_PROFILE=x\nTRACE_ENVIRONMENT=base")
    write_env(tmp_path / ".env.x", "TRACE_JOB_NAME=j")
    assert TraceSettings.load().environment == "base"
    write_env(tmp_path / ".env.x", "TRACE_ENVIRONMENT=from-profile")
    assert TraceSettings.load().environment == "from-profile"


def test_load_sees_a_changed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACE_JOB_NAME", "a")
    assert TraceSettings.load().job_name == "a"
    monkeypatch.setenv("TRACE_JOB_NAME", "b")
    assert TraceSettings.load().job_name == "b"


def test_load_sees_a_changed_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_env(tmp_path / name / ".env", f"TRACE_JOB_NAME=job-{name}")
    monkeypatch.chdir(tmp_path / "a")
    assert TraceSettings.load().job_name == "job-a"
    monkeypatch.chdir(tmp_path / "b")
    assert TraceSettings.load().job_name == "job-b"


def test_load_does_not_read_the_files_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(tmp_path / ".env", "TRACE_WORKFLOW_NAME=one")
    TraceSettings.load()
    import dotenv

    calls = []
    real = dotenv.dotenv_values

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dotenv, "dotenv_values", counting)
    for _ in range(20):
        TraceSettings.load()
    assert calls == []
    TraceSettings.clear_cache()
    TraceSettings.load()
    assert len(calls) == 1
