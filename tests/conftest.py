"""Fixtures every test folder shares: a fresh diagnostics rate limiter for each test, and
``reports``, which collects what the ``workflow_traces`` logger says during a test."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow_traces import diagnostics as _diagnostics

sys.path.insert(0, str(Path(__file__).parent))

from diagnostics_support import Reports


@pytest.fixture(autouse=True)
def _fresh_diagnostics() -> Iterator[None]:
    """Each test starts with the diagnostics rate limiter empty, so its own reports show."""
    with _diagnostics._lock:
        _diagnostics._last.clear()
        _diagnostics._suppressed.clear()
    yield


@pytest.fixture
def reports() -> Iterator[Reports]:
    """Everything the ``workflow_traces`` logger reports during the test."""
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
