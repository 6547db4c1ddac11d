"""Fixtures for the Elasticsearch sink and store tests.

``es`` is a fresh LocalElasticsearch on 127.0.0.1. ``cluster`` runs a test twice: against the
local server, and against a real cluster when TRACE_TEST_ES_URL is set (marked ``es_real``,
skipped otherwise; see es_helpers.py for the variables).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_services import LocalElasticsearch

sys.path.insert(0, str(Path(__file__).parent))

from es_helpers import REAL_URL, Cluster


@pytest.fixture
def es() -> Iterator[LocalElasticsearch]:
    with LocalElasticsearch(refresh_interval=None) as server:
        yield server


@pytest.fixture(
    params=[
        "local",
        pytest.param(
            "real",
            marks=[
                pytest.mark.es_real,
                pytest.mark.skipif(not REAL_URL, reason="set TRACE_TEST_ES_URL to run"),
            ],
        ),
    ]
)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The local server, then (opt-in) a real cluster: the same test against both."""
    if request.param == "local":
        with LocalElasticsearch() as server:
            yield Cluster(server)
        return
    real = Cluster(None)
    try:
        yield real
    finally:
        real.cleanup()
