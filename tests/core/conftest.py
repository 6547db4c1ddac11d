"""Fixtures for the core pipeline tests: real files and a real SQLite database under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow_traces import MultiTrace, get_trace


@pytest.fixture
def multi(tmp_path: Path) -> Iterator[Any]:
    """A factory of traces writing to a file and a SQLite sink under tmp_path; closes them."""
    made: list[MultiTrace] = []

    def make(run_id: str = "run-1", **extras: Any) -> MultiTrace:
        handlers = extras.pop(
            "handlers",
            [
                {"type": "file", "path": str(tmp_path / "files")},
                {"type": "sqlite", "path": str(tmp_path / "traces.db")},
            ],
        )
        trace = get_trace(
            run_id,
            extras.pop("parent_run_id", None),
            extras={"trace_type": "multi", "handlers": handlers, **extras},
        )
        made.append(trace)
        return trace

    yield make
    for trace in made:
        trace.close()


@pytest.fixture
def locations(tmp_path: Path) -> list[Path]:
    return [tmp_path / "files", tmp_path / "traces.db"]
