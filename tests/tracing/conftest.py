"""Fixtures for the trace-context tests: each test in its own folder, with no run context
inherited from the environment the suite runs in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACEPARENT", raising=False)
    monkeypatch.delenv("WORKFLOW_TRACES_CONTEXT", raising=False)
