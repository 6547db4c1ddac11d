"""Fixtures for the read-side tests: real runs written to a file folder, a SQLite database and
a LocalElasticsearch on 127.0.0.1, read back through each store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_services import LocalElasticsearch

sys.path.insert(0, str(Path(__file__).parent))

from read_helpers import Places
from sample_runs import sinks


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Places]:
    monkeypatch.chdir(tmp_path)
    with LocalElasticsearch() as es:
        url = es.url.rstrip("/")
        yield Places(
            tmp_path / "files",
            tmp_path / "traces.db",
            url,
            sinks(tmp_path / "files", tmp_path / "traces.db", url),
        )
