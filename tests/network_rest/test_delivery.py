"""Delivery guarantees of the REST sink against a real receiver on 127.0.0.1 that goes down,
answers errors or is slow. Records are counted by record_id."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rest_helpers import FAST, messages

from workflow_traces import SinkError
from workflow_traces import diagnostics as _diagnostics

pytestmark = pytest.mark.network


def _exactly_once(receiver: Any, n: int) -> None:
    ids = receiver.record_ids()
    counts = Counter(ids)
    assert len(counts) == n, f"{len(counts)} distinct records arrived, expected {n}"
    assert max(counts.values()) == 1, "a record arrived twice"
    assert sorted(messages(receiver), key=lambda m: int(m[1:])) == [f"m{i}" for i in range(n)]


def test_service_down_then_up_everything_arrives_exactly_once(receivers: Any, sinks: Any) -> None:
    receiver = receivers("datadog")
    receiver.down()  # connection refused
    handler, logger = sinks(api_url=receiver.url, service_type="datadog", max_retries=2, **FAST)
    n = 0
    opened = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # ~10 s outage, records keep coming
        for _ in range(20):
            logger.info("m%d", n)
            n += 1
        opened = opened or handler.health().circuit_open
        time.sleep(0.25)
    assert opened, "the circuit breaker never opened during the outage"
    health = handler.health()
    assert health.written == 0 and health.failed == 0 and health.dropped == 0
    assert health.queued == n
    receiver.up()
    assert receiver.wait_for(n, timeout=15)
    handler.flush(10)
    _exactly_once(receiver, n)
    health = handler.health()
    assert (health.written, health.failed, health.dropped) == (n, 0, 0)
    assert not health.circuit_open


def test_half_the_requests_fail_with_503_everything_arrives(receivers: Any, sinks: Any) -> None:
    receiver = receivers("grafana", fail_every=(2, 503))
    handler, logger = sinks(api_url=receiver.url, service_type="grafana", buffer_size=20, **FAST)
    for i in range(400):
        logger.info("m%d", i)
        if i % 50 == 0:
            time.sleep(0.02)
    handler.flush(20)
    assert receiver.wait_for(400, timeout=20)
    _exactly_once(receiver, 400)
    statuses = Counter(r.status for r in receiver.requests)
    assert statuses[503] >= 1 and statuses[204] >= 1
    assert handler.health().failed == 0


def test_400_is_dropped_and_reported_not_retried(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", statuses=[400])
    handler, logger = sinks(api_url=receiver.url, fail_silently=False, **FAST)
    for i in range(10):
        logger.info("m%d", i)
    with pytest.raises(SinkError) as info:
        handler.flush(10)
    assert handler.name in str(info.value) and "HTTP 400" in str(info.value)
    assert handler.name in info.value.failures
    assert len(receiver.requests) == 1  # not retried
    health = handler.health()
    assert health.failed == 10 and health.written == 0
    assert "HTTP 400" in (health.last_error or "")
    # The sink goes on with the next records.
    logger.info("after")
    handler.flush(10)
    assert messages(receiver) == ["after"]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried(status: int, receivers: Any, sinks: Any) -> None:
    receiver = receivers("datadog", statuses=[status])
    handler, logger = sinks(api_url=receiver.url, service_type="datadog", **FAST)
    logger.info("m0")
    handler.flush(10)
    assert len(receiver.requests) == 1
    assert handler.health().failed == 1


def test_413_splits_the_batch(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", max_records=10)
    handler, logger = sinks(api_url=receiver.url, buffer_size=80, flush_interval=5.0)
    for i in range(80):
        logger.info("m%d", i)
    handler.flush(10)
    _exactly_once(receiver, 80)
    assert receiver.requests[0].status == 413
    assert all(len(r.records) <= 10 for r in receiver.accepted())
    assert handler.health().failed == 0


def test_one_record_too_large_alone_is_dropped_and_reported(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", max_records=0)
    handler, logger = sinks(api_url=receiver.url, buffer_size=4, flush_interval=5.0)
    for i in range(4):
        logger.info("m%d", i)
    handler.flush(10)
    health = handler.health()
    assert health.failed == 4 and "413" in (health.last_error or "")
    assert len(receiver.requests) == 7  # 4 -> 2 + 2 -> 1 + 1 + 1 + 1: no retries


def test_retry_after_is_honoured(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", statuses=[429], retry_after=1)
    handler, logger = sinks(
        api_url=receiver.url, retry_base_delay=0.01, retry_max_delay=5.0, flush_interval=0.05
    )
    logger.info("m0")
    handler.flush(10)
    first, second = receiver.requests[:2]
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 0.9
    _exactly_once(receiver, 1)


def test_circuit_breaker_stops_hammering_and_recovers(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", statuses=[503] * 1000)
    handler, logger = sinks(
        api_url=receiver.url,
        max_retries=2,
        flush_interval=0.05,
        retry_base_delay=0.05,
        retry_max_delay=0.4,
    )
    for i in range(50):
        logger.info("m%d", i)
    time.sleep(3)
    tried = len(receiver.requests)
    # 3 attempts, then probes at most every 0.2-0.4 s: never more than ~20 requests in 3 s.
    assert 3 <= tried <= 20
    health = handler.health()
    assert health.circuit_open and health.failed == 0 and health.queued == 50
    receiver.reset_failures()
    assert receiver.wait_for(50, timeout=10)
    handler.flush(10)
    _exactly_once(receiver, 50)
    assert not handler.health().circuit_open


def test_flush_during_an_outage_returns_and_reports(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic")
    receiver.down()
    handler, logger = sinks(api_url=receiver.url, max_retries=1, fail_silently=False, **FAST)
    for i in range(5):
        logger.info("m%d", i)
    started = time.monotonic()
    with pytest.raises(SinkError) as info:
        handler.flush()  # no timeout: must not hang while the service is down
    assert time.monotonic() - started < 10
    assert "service unavailable" in str(info.value) and "held in memory" in str(info.value)
    assert handler.health().queued == 5 and handler.health().failed == 0
    receiver.up()
    assert receiver.wait_for(5, timeout=10)
    _exactly_once(receiver, 5)


def test_close_never_retries_past_its_deadline(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", statuses=[503] * 1000)
    handler, logger = sinks(
        api_url=receiver.url,
        max_retries=100,
        fail_silently=False,
        flush_interval=0.05,
        retry_base_delay=0.2,
        retry_max_delay=0.5,
    )
    for i in range(20):
        logger.info("m%d", i)
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(SinkError) as info:
        handler.close(timeout=1.0)
    took = time.monotonic() - started
    assert took < 3.5
    assert "503" in str(info.value)
    seen = len(receiver.requests)
    time.sleep(1.0)
    assert len(receiver.requests) == seen  # nothing sent after close returned
    health = handler.health()
    assert health.failed + health.dropped == 20 and health.written == 0


def test_spool_keeps_records_on_disk_and_sends_them_oldest_first(
    receivers: Any, sinks: Any, tmp_path: Path
) -> None:
    receiver = receivers("datadog")
    receiver.down()
    spool = tmp_path / "spool"
    config = {
        "api_url": receiver.url,
        "service_type": "datadog",
        "spool_dir": str(spool),
        "max_retries": 0,
        **FAST,
    }
    first, logger = sinks(**config)
    for i in range(300):
        logger.info("m%d", i)
    first.flush(10)
    health = first.health()
    assert health.spooled == 300 and health.queued == 0 and health.failed == 0
    segments = list(spool.glob("*/*.jsonl"))
    assert segments and sum(len(p.read_bytes().splitlines()) for p in segments) == 300
    first.close(timeout=2)  # the service is still down: the spool stays for the next start
    assert first.health().failed == 0
    assert sum(len(p.read_bytes().splitlines()) for p in spool.glob("*/*.jsonl")) == 300

    receiver.up()
    second, logger2 = sinks(**config)
    logger2.info("m300")
    assert receiver.wait_for(301, timeout=15)
    second.flush(10)
    _exactly_once(receiver, 301)
    order = [int(m[1:]) for m in messages(receiver)]
    assert order == sorted(order)  # oldest first
    second.close(timeout=5)
    assert not list(spool.glob("*/*.jsonl")) and not list(spool.glob("*/*.sent"))


def test_failures_are_reported_on_our_own_logger(
    receivers: Any, sinks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receivers("generic", statuses=[400])
    handler, logger = sinks(api_url=receiver.url, **FAST)
    _diagnostics._last.clear()
    with caplog.at_level(logging.WARNING, logger="workflow_traces"):
        logger.info("m0")
        handler.flush(10)  # fail_silently=True: nothing raised
    reports = [r for r in caplog.records if r.name == "workflow_traces"]
    assert any("HTTP 400" in r.getMessage() and handler.name in r.getMessage() for r in reports)


def test_a_service_back_but_refusing_the_held_batch_closes_the_breaker(
    receivers: Any, sinks: Any
) -> None:
    receiver = receivers("generic")
    receiver.down()
    handler, logger = sinks(api_url=receiver.url, max_retries=0, **FAST)
    for i in range(5):
        logger.info("m%d", i)
    deadline = time.monotonic() + 10
    while not handler.health().circuit_open and time.monotonic() < deadline:
        time.sleep(0.02)
    assert handler.health().circuit_open
    receiver.fail_next(400)
    receiver.up()
    deadline = time.monotonic() + 10
    while handler.health().failed < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    health = handler.health()
    assert health.failed == 5 and not health.circuit_open
    logger.info("m5")
    handler.flush(10)
    assert messages(receiver) == ["m5"]


def test_fail_silently_true_never_raises_to_the_caller(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic", statuses=[400])
    handler, logger = sinks(api_url=receiver.url, max_retries=0, **FAST)
    logger.info("m0")
    handler.flush(10)  # a 400: reported, not raised
    receiver.down()
    logger.info("m1")
    handler.flush(10)  # an outage: reported, not raised
    handler.close(timeout=0.5)  # records lost at the deadline: reported, not raised
    health = handler.health()
    assert health.failed + health.dropped == 2 and health.written == 0


def test_last_error_says_when_and_recovery_puts_it_in_the_past(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic")
    receiver.down()  # connection refused
    handler, logger = sinks(api_url=receiver.url, max_retries=1, **FAST)
    assert (handler.health().last_error_at, handler.health().recovered_at) == (None, None)
    before = time.time()
    logger.info("m0")
    deadline = time.monotonic() + 10
    while handler.health().last_error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    during = handler.health()
    assert during.last_error is not None and during.circuit_open
    assert during.last_error_at is not None and before <= during.last_error_at <= time.time()
    assert during.recovered_at is None  # the error is current
    receiver.up()
    assert receiver.wait_for(1, timeout=15)
    handler.flush(10)
    after = handler.health()
    assert after.written == 1 and not after.circuit_open
    # The error is still shown, with its time, and the recovery after it.
    assert after.last_error is not None
    assert after.last_error_at is not None and after.recovered_at is not None
    assert after.last_error_at <= after.recovered_at <= time.time()
    # A new failure makes the error current again.
    receiver.fail_next(400)
    logger.info("m1")
    handler.flush(10)
    again = handler.health()
    assert "HTTP 400" in (again.last_error or "") and again.recovered_at is None
    assert again.last_error_at is not None and again.last_error_at >= after.recovered_at
