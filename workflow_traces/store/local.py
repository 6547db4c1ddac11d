"""``open_store(location)``: the store for a SQLite file, a file-sink folder or an Elasticsearch
URL; each answers the same interface (``Store``, in store/base.py)."""

from __future__ import annotations

import os
from pathlib import Path

from workflow_traces.errors import ConfigError
from workflow_traces.store.base import STATUSES, Run, RunSummary, Store, summarize
from workflow_traces.store.files import FileStore
from workflow_traces.store.sqlite import SQLiteStore

__all__ = [
    "STATUSES",
    "FileStore",
    "Run",
    "RunSummary",
    "SQLiteStore",
    "Store",
    "open_store",
    "summarize",
]


def open_store(location: str | os.PathLike[str]) -> Store:
    """A store over a SQLite database file, a file-sink folder, an Elasticsearch URL, or an
    OpenSearch URL (``opensearch+https://host:9200/index``)."""
    text = os.fspath(location)
    if text.startswith(("http://", "https://", "opensearch+http://", "opensearch+https://")):
        try:
            from workflow_traces.store.elasticsearch import ElasticsearchStore
        except ImportError as exc:
            raise ConfigError(
                f"location: reading {text!r} needs the elasticsearch extra ({exc})"
            ) from None
        return ElasticsearchStore.from_url(text)
    path = Path(text)
    if path.is_dir():
        return FileStore(path)
    if path.is_file():
        with open(path, "rb") as fh:
            magic = fh.read(16)
        # An empty file is an SQLite database not written yet (the sink has just created it).
        if magic.startswith(b"SQLite format 3") or not magic:
            return SQLiteStore(path)
        raise ConfigError(f"location: {text!r} is neither a SQLite database nor a folder")
    raise ConfigError(f"location: {text!r} does not exist")
