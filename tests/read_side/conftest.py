"""Fixtures for the read-side tests: real runs written to a file folder, a SQLite database and
a LocalElasticsearch on 127.0.0.1, read back through each store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local_services import LocalElasticsearch

sys.path.insert(0, str(Path(__file__).parent))

from sample_runs import sinks


@dataclass
class Places:
    """Where a test's runs are written, and the store locations reading them."""

    files: Path
    db: Path
    es_url: str
    extras: dict[str, Any]

    @property
    def locations(self) -> dict[str, str]:
        return {"file": str(self.files), "sqlite": str(self.db), "es": f"{self.es_url}/traces"}


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
