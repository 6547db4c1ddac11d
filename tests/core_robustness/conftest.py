"""Fixtures for the core's robustness tests: real files, real SQLite, real subprocesses."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow_traces import _diagnostics

# The test modules import their helpers from robust_helpers.py next to this file.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _fresh_diagnostics() -> Iterator[None]:
    """Each test starts with the diagnostics rate limiter empty, so its own reports show."""
    with _diagnostics._lock:
        _diagnostics._last.clear()
        _diagnostics._suppressed.clear()
    yield


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with ``tmp_path`` as the working directory (the spec's paths are relative)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Reports(logging.Handler):
    """Collects what the ``workflow_traces`` diagnostics logger says."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def reports() -> Iterator[Reports]:
    diag = logging.getLogger("workflow_traces")
    handler = Reports()
    old_level = diag.level
    diag.addHandler(handler)
    diag.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        diag.removeHandler(handler)
        diag.setLevel(old_level)
