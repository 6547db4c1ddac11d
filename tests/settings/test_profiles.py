"""The example profiles (examples/profiles/.env.development, .env.staging, .env.production)
are the spec's three environment presets. Each one validates; their network URLs are
placeholders, checked here and never contacted (no handler is built from them)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from workflow_traces import TraceSettings
from workflow_traces.settings.effective import resolve

PROFILES = Path(__file__).resolve().parents[2] / "examples" / "profiles"

#: The spec's presets: (type, path/url, buffer_size, flush_interval) per handler.
EXPECTED = {
    "development": (
        True,
        [
            ("file", "./logs/dev", 4096, 1.0),
            ("sqlite", "./logs/dev_traces.db", 50, 1.0),
        ],
    ),
    "staging": (
        True,
        [
            ("file", "./logs/staging", 8192, 2.0),
            ("sqlite", "./logs/staging_traces.db", 100, 2.0),
            ("restapi", "https://staging-api.example.com/logs", 50, 2.0),
        ],
    ),
    "production": (
        False,
        [
            ("file", "./logs/production", 16384, 5.0),
            ("sqlite", "./logs/production_traces.db", 200, 5.0),
            ("restapi", "https://api.example.com/logs", 100, 5.0),
            ("elasticsearch", "https://elastic.example.com:9200", 200, 5.0),
        ],
    ),
}


def where(cfg: object) -> str:
    for key in ("path", "api_url", "es_hosts"):
        if hasattr(cfg, key):
            return str(getattr(cfg, key))
    raise AssertionError(cfg)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_validates_to_the_spec_preset(name: str) -> None:
    path = PROFILES / f".env.{name}"
    assert path.read_text().startswith("# workflow-traces profile"), "a comment opens the file"
    settings = TraceSettings.load(profile=name, env_file=PROFILES / ".env")
    fail_silently, handlers = EXPECTED[name]
    assert settings.environment == name
    assert settings.fail_silently is fail_silently
    eff = resolve(settings)
    assert eff.trace_type == "multi"
    got = [(h.type, where(h), h.buffer_size, h.flush_interval) for h in eff.handlers]
    assert got == handlers
    for cfg in eff.handlers:
        if cfg.type in ("restapi", "elasticsearch"):
            host = urlsplit(where(cfg)).hostname or ""
            assert host == "example.com" or host.endswith(".example.com"), host
    # Every value set comes from the profile file.
    assert {o.source for o in settings.origins.values()} <= {"profile file", "arguments"}


def test_production_profile_takes_its_secrets_from_the_secrets_dir(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "TRACE_HANDLERS__2__API_KEY").write_text("dd-key\n")
    (secrets / "TRACE_HANDLERS__3__PASSWORD").write_text("es-password\n")
    settings = TraceSettings.load(
        profile="production", env_file=PROFILES / ".env", secrets_dir=secrets
    )
    rest, es = settings.handlers[2], settings.handlers[3]
    assert rest.service_type == "datadog"
    assert rest.api_key is not None and rest.api_key.get_secret_value() == "dd-key"
    assert es.username == "elastic"
    assert es.password is not None and es.password.get_secret_value() == "es-password"
    assert settings.origins[("handlers", 2, "api_key")].source == "secrets dir"


def test_profile_files_hold_no_secret_values() -> None:
    for path in PROFILES.glob(".env.*"):
        for line in path.read_text().splitlines():
            if line.startswith("TRACE_"):
                name = line.split("=", 1)[0]
                assert not name.endswith(("API_KEY", "PASSWORD", "TOKEN")), (path, name)
