"""``ship`` to Elasticsearch (the LocalElasticsearch on 127.0.0.1): each record one document
whose ``_id`` is its record_id, so a ship sent again keeps one copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_services import LocalElasticsearch
from ship_helpers import ids_in, write_runs

from workflow_traces.shipping import ship
from workflow_traces.shipping.checkpoint import default_path

pytest.importorskip("elasticsearch")


def test_ships_to_elasticsearch_once_by_id(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    write_runs("sqlite", src, runs=2, per_run=300)
    with LocalElasticsearch(refresh_interval=None) as server:
        dest = {"type": "elasticsearch", "es_hosts": server.url, "index_name": "shipped"}
        first = ship(src, dest)[0]
        assert first.ok and first.sent == 604
        server.refresh("shipped")
        assert sorted(server.documents("shipped")) == sorted(ids_in(src))
        assert ship(src, dest)[0].sent == 0
        default_path(src).unlink()  # forget the checkpoint: everything goes again, same ids
        assert ship(src, dest)[0].sent == 604
        server.refresh("shipped")
        assert server.count("shipped") == 604
