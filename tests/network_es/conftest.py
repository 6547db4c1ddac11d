"""Fixtures for the Elasticsearch and OpenSearch sink and store tests.

``es`` is a fresh LocalElasticsearch on 127.0.0.1. ``cluster`` runs a test against the local
server, against osmem-server (an OpenSearch-API server from PyPI, started here on 127.0.0.1,
one clone of it per test), and against real clusters when TRACE_TEST_ES_URL (marked
``es_real``) or TRACE_TEST_OPENSEARCH_URL (marked ``opensearch_real``) is set, skipped otherwise;
see es_helpers.py for the variables.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_services import LocalElasticsearch

sys.path.insert(0, str(Path(__file__).parent))

from es_helpers import REAL_OPENSEARCH_URL, REAL_URL, Cluster


@pytest.fixture
def es() -> Iterator[LocalElasticsearch]:
    with LocalElasticsearch(refresh_interval=None) as server:
        yield server


@pytest.fixture(scope="session")
def osmem() -> Iterator[Any]:
    """osmem-server, started once for the session on 127.0.0.1 (its bundled binary)."""
    from osmem_server import OsmemServer

    server = OsmemServer.start(addr="127.0.0.1:0", japanese=False)
    try:
        yield server
    finally:
        server.close()
        if server.process.stdout is not None:  # osmem's close() leaves its stdout pipe open
            server.process.stdout.close()


@pytest.fixture(
    params=[
        "local",
        "osmem",
        pytest.param(
            "real",
            marks=[
                pytest.mark.es_real,
                pytest.mark.skipif(not REAL_URL, reason="set TRACE_TEST_ES_URL to run"),
            ],
        ),
        pytest.param(
            "opensearch_real",
            marks=[
                pytest.mark.opensearch_real,
                pytest.mark.skipif(
                    not REAL_OPENSEARCH_URL, reason="set TRACE_TEST_OPENSEARCH_URL to run"
                ),
            ],
        ),
    ]
)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The local server, osmem-server (OpenSearch), then (opt-in) real clusters: the same test
    against each."""
    if request.param == "local":
        with LocalElasticsearch() as server:
            yield Cluster(server)
        return
    if request.param == "osmem":
        with request.getfixturevalue("osmem").clone() as clone:
            yield Cluster(None, product="opensearch", url=clone.url)
        return
    product = "opensearch" if request.param == "opensearch_real" else "elasticsearch"
    real = Cluster(None, product=product)
    try:
        yield real
    finally:
        real.cleanup()
