"""The README's example error lines are the real ones: each is made here, the way it says."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from workflow_traces import ConfigError, get_trace
from workflow_traces.exporters import registry

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_error_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("Errors name the variable or key")
    block = re.search(r"```\n(.*?)```", text[start:], re.S)
    assert block is not None
    return block.group(1).splitlines()


def real_error(handlers: list[dict[str, object]]) -> str:
    with pytest.raises(ConfigError) as info:
        extras = {"trace_type": "multi", "handlers": handlers, "fail_silently": False}
        get_trace("r1", extras=extras)
    return str(info.value)


def builtin_only(message: str) -> str:
    """The message as a machine with no sink plugins installed shows it (the dev set-up
    installs examples/custom_sink, whose type would be listed too)."""
    plugins = [t for t in registry.types() if t not in {s.type for s in registry.BUILTIN}]
    for kind in plugins:
        message = message.replace(f", {kind}", "")
    return message


def matches(shown: str, real: str) -> bool:
    """``shown`` is ``real``, or its beginning when ``shown`` ends with ``...``."""
    if shown.endswith("..."):
        return real.startswith(shown[:-3])
    return shown == real


def test_the_readme_error_lines_are_the_real_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("TRACE_")]:
        monkeypatch.delenv(name)
    lines = readme_error_lines()
    assert len(lines) == 3
    monkeypatch.setenv("TRACE_TRACE_TYPE", "multi")
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__1__BUFFER_SIZE", "-5")
    with pytest.raises(ConfigError) as info:
        get_trace("r1")
    from_env = str(info.value)
    monkeypatch.delenv("TRACE_HANDLERS__0__TYPE")
    monkeypatch.delenv("TRACE_HANDLERS__1__TYPE")
    monkeypatch.delenv("TRACE_HANDLERS__1__BUFFER_SIZE")
    real = [
        from_env,
        builtin_only(real_error([{"type": "kafka"}])),
        real_error([{"type": "file", "flush_intervall": 1}]),
    ]
    for shown, made in zip(lines, real, strict=True):
        assert matches(shown, made), (shown, made)
