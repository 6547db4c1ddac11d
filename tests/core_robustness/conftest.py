"""Fixtures for the core's robustness tests: real files, real SQLite, real subprocesses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test modules import their helpers from robust_helpers.py next to this file.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with ``tmp_path`` as the working directory (the spec's paths are relative)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
