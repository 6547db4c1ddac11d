"""Redaction before any sink: secrets planted in messages, extras, exceptions and tracebacks never
reach a file (JSONL and stdout/stderr text), SQLite, a REST body, an Elasticsearch document or
the spool on disk. Every output byte is searched for each planted value. Real files, a real
SQLite database, a LocalReceiver and a LocalElasticsearch on 127.0.0.1; nothing is mocked."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_services import LocalElasticsearch, LocalReceiver

from workflow_traces import get_trace
from workflow_traces.pipeline.redact import REDACTED

FAST = {"flush_interval": 0.05, "retry_base_delay": 0.02, "retry_max_delay": 0.25}

# Built at run time, each unique: a leak is found by searching for the value itself.
PLANTED = {
    "bearer": "Zm9vYmFyLXBsYW50ZWQtYmVhcmVy",
    "aws": "AKIA" + "PLANTED0AWSKEY16",
    "url_password": "hunter2-planted-url",
    "github": "ghp_" + "Planted" * 5 + "x",
    "github_pat": "github_pat_" + "P" * 22 + "_" + "q" * 59,
    "slack": "xoxb-" + "1234567890-planted-slack",
    "stripe": "sk_live_" + "PlantedStripe0123456789",
    "extra_password": "planted-extra-password-value",
    "extra_token": "planted-extra-token-value",
    "nested_cookie": "planted-nested-cookie-value",
    "exc_token": "ghs_" + "ExcPlanted" * 4,
}
MESSAGES = [
    f"calling api with Authorization: Bearer {PLANTED['bearer']} now",
    f"aws key {PLANTED['aws']} in use",
    f"fetching https://deploy:{PLANTED['url_password']}@example.com/repo.git",
    f"github {PLANTED['github']} and {PLANTED['github_pat']}",
    f"slack {PLANTED['slack']}; stripe {PLANTED['stripe']}",
]


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    r = LocalReceiver("generic")
    yield r
    r.stop()


@pytest.fixture
def spool_receiver() -> Iterator[LocalReceiver]:
    r = LocalReceiver("datadog")
    r.down()  # the records wait in the spool on disk
    yield r
    r.stop()


@pytest.fixture
def es() -> Iterator[LocalElasticsearch]:
    with LocalElasticsearch(refresh_interval=None) as server:
        yield server


def _log_everything(trace: Any) -> int:
    """Plant every secret; returns how many records were logged."""
    for message in MESSAGES:
        trace.info(message)
    logger = logging.getLogger("tests.redact.planted")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(trace.handler)
    try:
        logger.warning(
            "with extras",
            extra={
                "db_Password": PLANTED["extra_password"],
                "auth_token": PLANTED["extra_token"],
                "request": {"headers": {"Cookie": PLANTED["nested_cookie"]}},
            },
        )
        try:
            raise RuntimeError(f"login failed with token {PLANTED['exc_token']}")
        except RuntimeError:
            trace.exception("it failed")
        trace.info("plain line")
    finally:
        logger.removeHandler(trace.handler)
    return len(MESSAGES) + 3


def _assert_clean(blob: bytes, where: str) -> None:
    for name, value in PLANTED.items():
        assert value.encode() not in blob, f"{name} leaked into {where}"


def test_no_planted_secret_reaches_any_sink_or_the_spool(
    tmp_path: Path, receiver: LocalReceiver, spool_receiver: LocalReceiver, es: LocalElasticsearch
) -> None:
    files, spool = tmp_path / "files", tmp_path / "spool"
    db = tmp_path / "traces.db"
    trace = get_trace(
        run_id="redact-run",
        extras={
            "handlers": [
                {"type": "file", "path": str(files), "flush_interval": 0.05},
                {"type": "sqlite", "path": str(db), "flush_interval": 0.05},
                {"type": "restapi", "api_url": receiver.url, **FAST},
                {
                    "type": "restapi",
                    "service_type": "datadog",
                    "api_url": spool_receiver.url,
                    "api_key": "k",
                    "spool_dir": str(spool),
                    "max_retries": 0,
                    **FAST,
                },
                {
                    "type": "elasticsearch",
                    "es_hosts": [es.url],
                    "index_name": "redact-index",
                    "flush_interval": 0.05,
                },
            ],
        },
    )
    logged = _log_everything(trace)
    trace.handler.flush(10)
    assert receiver.wait_for(logged, timeout=15)
    spooled = sum(len(p.read_bytes().splitlines()) for p in spool.glob("*/*.jsonl"))
    assert spooled == logged  # the spool holds every record, on disk, before we look

    # Every byte written under tmp_path: the file sink's JSONL and text, SQLite (and its
    # journal), the spool's segments.
    on_disk = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "stdout.txt" for p in on_disk) and any(
        p.suffix == ".jsonl" for p in on_disk
    )
    for path in on_disk:
        _assert_clean(path.read_bytes(), str(path))
    for req in receiver.requests:
        _assert_clean(req.body, "a REST body")
    docs = es.documents("redact-index")
    _assert_clean(json.dumps(docs).encode(), "Elasticsearch documents")

    # Nothing lost: every record is there, by id, with [REDACTED] where the secrets were.
    rows = sqlite3.connect(db).execute("SELECT record_id, message FROM trace_records").fetchall()
    ids = {r[0] for r in rows}
    assert len(ids) == logged
    assert set(filter(None, receiver.record_ids())) == ids
    assert {d["record_id"] for d in docs.values()} == ids if docs else False
    messages = [r[1] for r in rows]
    assert sum(REDACTED in m for m in messages) == len(MESSAGES)
    trace.close(timeout=2)


def test_redact_false_on_one_sink_keeps_the_original_there_only(tmp_path: Path) -> None:
    kept, redacted = tmp_path / "kept.db", tmp_path / "redacted.db"
    trace = get_trace(
        run_id="redact-off",
        extras={
            "handlers": [
                {"type": "sqlite", "path": str(kept), "redact": False},
                {"type": "sqlite", "path": str(redacted)},
            ]
        },
    )
    trace.info(MESSAGES[0])
    trace.close()
    assert PLANTED["bearer"].encode() in kept.read_bytes() + _wal(kept)
    assert PLANTED["bearer"].encode() not in redacted.read_bytes() + _wal(redacted)


def _wal(db: Path) -> bytes:
    wal = db.with_name(db.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""
