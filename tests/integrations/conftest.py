"""Fixtures for the integration tests: real file and SQLite sinks under tmp_path."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workflow_traces import Run, open_store

# The test modules import their helpers from integ_helpers.py next to this file.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder: default sinks write under ./logs there."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sinks(tmp_path: Path) -> dict[str, Any]:
    """Extras that trace to a file folder and a SQLite database at once."""
    return {
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": str(tmp_path / "files")},
            {"type": "sqlite", "path": str(tmp_path / "traces.db")},
        ],
        "fail_silently": False,
    }


@pytest.fixture
def read_runs(tmp_path: Path) -> Callable[[str], tuple[Run, Run]]:
    """Reads one run back from both stores: (from SQLite, from the file folder)."""

    def read(run_id: str) -> tuple[Run, Run]:
        with open_store(tmp_path / "traces.db") as db, open_store(tmp_path / "files") as files:
            return db.get_run(run_id), files.get_run(run_id)

    return read
