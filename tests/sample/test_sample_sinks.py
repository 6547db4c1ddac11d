"""Sampling and the rate limit, per sink, on the sink's worker. The sampler is deterministic: a
record is kept when ``id_fraction(record_id)`` (a Fibonacci hash of the id's counter) is below
the rate, so these tests are exact, not statistical. Real SQLite files and a LocalReceiver."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_services import LocalReceiver

from workflow_traces import get_trace
from workflow_traces.core.record import Record
from workflow_traces.errors import ConfigError
from workflow_traces.pipeline.health import SinkHealth
from workflow_traces.pipeline.sample import RateLimiter, Sampler, id_fraction
from workflow_traces.settings.config import validate_handler

FAST = {"flush_interval": 0.05, "retry_base_delay": 0.02, "retry_max_delay": 0.25}


@pytest.fixture
def datadog() -> Iterator[LocalReceiver]:
    r = LocalReceiver("datadog")
    yield r
    r.stop()


def _ids(db: Path) -> set[str]:
    return {r[0] for r in sqlite3.connect(db).execute("SELECT record_id FROM trace_records")}


def _adds_up(h: SinkHealth, logged: int) -> None:
    assert h.written + h.dropped + h.failed + h.queued + h.sampled + h.limited == logged


def test_sqlite_keeps_everything_while_datadog_gets_a_tenth(
    tmp_path: Path, datadog: LocalReceiver
) -> None:
    db = tmp_path / "all.db"
    trace = get_trace(
        run_id="sampled-run",
        extras={
            "handlers": [
                {"type": "sqlite", "path": str(db)},
                {
                    "type": "restapi",
                    "service_type": "datadog",
                    "api_url": datadog.url,
                    "api_key": "k",
                    "sample": {"DEBUG": 0.1, "INFO": 0.1},
                    **FAST,
                },
            ]
        },
    )
    n = 2000
    trace.event("stage", "started", name="noisy")  # lifecycle events: never sampled away
    for i in range(n):
        (trace.debug if i % 2 else trace.info)(f"line {i}")
    trace.warning("kept: a warning")
    trace.error("kept: an error")
    trace.event("stage", "succeeded", name="noisy")
    trace.close()
    everything = _ids(db)
    events = 2  # stage started, stage succeeded
    logged = n + 2 + events
    assert len(everything) == logged
    sent = [rid for rid in datadog.record_ids() if rid is not None]
    assert len(sent) == len(set(sent))  # once each
    assert set(sent) <= everything
    sent_records = {rec.get("record_id"): rec for rec in datadog.records()}
    h = trace.health()
    local, remote = h[f"sqlite:{db}"], next(v for k, v in h.items() if k.startswith("restapi"))
    assert (local.written, local.sampled) == (logged, 0)
    _adds_up(local, logged)
    _adds_up(remote, logged)
    assert remote.written == len(sent) and remote.sampled == logged - len(sent)
    assert remote.dropped == remote.failed == remote.limited == 0
    # Exactly the records whose id falls below the rate, plus every warning, error and event.
    lines = len(sent) - 2 - events
    assert abs(lines - n // 10) <= 2, lines  # the hash spreads consecutive ids evenly
    messages = [str(r.get("message", "")) for r in sent_records.values()]
    assert sum("kept:" in m for m in messages) == 2


def test_the_rate_limit_keeps_a_seconds_budget_and_counts_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "limited.db"
    trace = get_trace(
        run_id="limited-run",
        extras={"handlers": [{"type": "sqlite", "path": str(db), "max_records_per_second": 50}]},
    )
    started = time.monotonic()
    for i in range(1000):
        trace.info(f"burst {i}")
    trace.warning("a warning is never limited")
    took = time.monotonic() - started
    trace.close()
    h = next(iter(trace.health().values()))
    _adds_up(h, 1001)
    assert h.limited > 0 and h.written == 1001 - h.limited
    # The budget: 50 to begin with, refilled at 50 a second of the records' own time.
    assert h.written - 1 <= 50 + 50 * took + 1
    rows = sqlite3.connect(db).execute("SELECT message FROM trace_records").fetchall()
    assert ("a warning is never limited",) in rows


def _rec(levelno: int, record_id: object, time_ns: int = 0, kind: str = "log") -> Record:
    return Record(
        time_ns=time_ns, level="X", levelno=levelno, message="m", run_id="r",
        parent_run_id=None, workflow_name=None, job_name=None, stage_name=None, filename=None,
        lineno=None, func_name=None, process=1, thread=1, host="h",
        record_id=record_id, kind=kind,  # type: ignore[arg-type]
    )  # fmt: skip


def test_sampling_is_decided_by_record_id_and_spares_warnings_and_events() -> None:
    sampler = Sampler({"DEBUG": 0.25})
    ids = range(10**15, 10**15 + 4000)
    kept = [i for i in ids if sampler.keeps(_rec(10, i))]
    assert len(kept) == 1000  # evenly: the Fibonacci hash of consecutive counters
    assert kept == [i for i in ids if id_fraction(i) < 0.25]
    assert all(sampler.keeps(_rec(20, i)) for i in ids)  # INFO not listed: all kept
    assert all(sampler.keeps(_rec(30, i)) for i in ids)
    assert all(sampler.keeps(_rec(10, i, kind="event")) for i in ids)
    # The whole id ("<prefix>-<counter>") falls where its counter does.
    assert id_fraction(f"abcdef0123456789-{10**15 + 7}") == id_fraction(10**15 + 7)


def test_the_limiter_refills_by_the_records_time() -> None:
    limiter = RateLimiter(10)
    second = 1_000_000_000
    first = [limiter.keeps(_rec(20, i, time_ns=5 * second)) for i in range(30)]
    assert sum(first) == 10
    later = [limiter.keeps(_rec(20, i, time_ns=6 * second)) for i in range(30)]
    assert sum(later) == 10
    assert limiter.keeps(_rec(40, 0, time_ns=6 * second))  # errors pass, budget or not


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sample", {"WARNING": 0.5}, "never sampled"),
        ("sample", {"DEBUG": 2}, "from 0 to 1"),
        ("sample", {"VERBOSE": 0.5}, "DEBUG or INFO"),
        ("max_records_per_second", 0, "must be > 0"),
    ],
)
def test_bad_sampling_keys_are_config_errors(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_handler({"type": "sqlite", "path": "x.db", key: value})
    assert key in str(info.value) and expected in str(info.value)


def test_config_check_probes_a_sink_that_samples_everything_away(tmp_path: Path) -> None:
    from workflow_traces.settings.probe import probe

    cfg = validate_handler(
        {"type": "sqlite", "path": str(tmp_path / "p.db"), "sample": {"INFO": 0, "DEBUG": 0}}
    )
    result = probe(cfg)
    assert result.ok, result
