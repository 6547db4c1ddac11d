"""Helpers shared by the settings tests."""

from __future__ import annotations

import pytest

from workflow_traces import ConfigError
from workflow_traces.settings.model import TraceSettings


def write_env(path: object, text: str) -> None:
    """Write a .env-style file (``path`` is a pathlib.Path)."""
    path.write_text(text.strip() + "\n", encoding="utf-8")  # type: ignore[attr-defined]


def config_error(**kwargs: object) -> str:
    """The ConfigError message TraceSettings.load raises."""
    with pytest.raises(ConfigError) as info:
        TraceSettings.load(**kwargs)  # type: ignore[arg-type]
    return str(info.value)


#: Text that would mean pydantic's own error dump reached the user.
PYDANTIC_WORDS = ("pydantic", "errors.pydantic.dev", "Input should", "type=", "validation error")


def assert_clean(message: str) -> None:
    for word in PYDANTIC_WORDS:
        assert word not in message, f"{word!r} in {message!r}"


SECRET = "s3cr3t-Value-4242"
SECRET2 = "pa55-Word-7777"
