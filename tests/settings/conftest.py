"""Fixtures for the settings tests: a clean TRACE_* environment and a temporary working folder.

Every test starts with no TRACE_* variable set (monkeypatch removes any the machine has), the
settings cache empty, and ``tmp_path`` as the working directory, where ``.env`` files are read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workflow_traces import diagnostics as _diagnostics
from workflow_traces.settings.model import TraceSettings

sys.path.insert(0, str(Path(__file__).parent))


#: A secret value that must never be printed, logged or dumped anywhere.


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.upper().startswith("TRACE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    TraceSettings.clear_cache()
    with _diagnostics._lock:
        _diagnostics._last.clear()
        _diagnostics._suppressed.clear()
    yield tmp_path
    TraceSettings.clear_cache()
