"""``close(timeout=T)`` keeps its deadline against a service that hangs, and a sink's counts add
up at every moment: ``written + dropped + failed + queued + sampled + limited`` is what was
logged to it (the last two: left out by the sink's ``sample`` and ``max_records_per_second``), also
while a request is in flight and right after ``close()`` returns. Records still unsent at close
are counted as failed; ``dropped`` is for a full buffer and records logged after close.

The service is a real HTTP server on 127.0.0.1 (LocalReceiver) that answers each request after
5 seconds."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from local_services import LocalReceiver

from workflow_traces import RestAPIHandler, SinkHealth

pytestmark = pytest.mark.network

#: The receiver answers each request after this many seconds.
HANG = 5.0


def _total(h: SinkHealth) -> int:
    return h.written + h.dropped + h.failed + h.queued + h.sampled + h.limited


@pytest.fixture
def hanging() -> Any:
    receiver = LocalReceiver("generic", delay=HANG)
    yield receiver
    receiver.stop()


def _sink(receiver: LocalReceiver, **kwargs: Any) -> RestAPIHandler:
    return RestAPIHandler(
        "close-deadline",
        api_url=receiver.url,
        service_type="generic",
        buffer_size=50,
        flush_interval=0.05,
        timeout=10.0,  # the client would wait out the hang: close() must not
        retry_base_delay=0.02,
        retry_max_delay=0.25,
        fail_silently=True,
        **kwargs,
    )


def _log(handler: RestAPIHandler, n: int) -> None:
    import logging

    logger = logging.getLogger(f"tests.close_and_counts.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        for i in range(n):
            logger.info("m%d", i)
    finally:
        logger.removeHandler(handler)


def test_close_keeps_its_deadline_while_a_request_hangs(hanging: LocalReceiver) -> None:
    handler = _sink(hanging)
    _log(handler, 200)
    time.sleep(0.3)  # the worker sends the first batch: a request in flight, the rest queued
    timeout = 1.5
    start = time.monotonic()
    handler.close(timeout=timeout)
    took = time.monotonic() - start
    # The promise: T plus at most half a second, even with a request in flight.
    assert took <= timeout + 0.5, f"close(timeout={timeout}) took {took:.2f} s"
    health = handler.health()
    assert _total(health) == 200, health
    assert health.queued == 0, health
    assert health.written == 0, health  # nothing was answered within the deadline
    # Unsent at close: failed, not dropped (the buffer never was full).
    assert (health.failed, health.dropped) == (200, 0), health
    assert health.last_error is not None and "unwritten" in health.last_error


def test_the_counts_add_up_at_every_moment(hanging: LocalReceiver) -> None:
    """Sampled from another thread while the worker takes batches into flight and close()
    gives up on them: every sample accounts for every record."""
    handler = _sink(hanging)
    logged = 300
    _log(handler, logged)
    samples: list[SinkHealth] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(handler.health())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        time.sleep(0.5)  # the first request is in flight, the rest wait in the buffer
        handler.close(timeout=0.5)
        after = handler.health()
        time.sleep(0.2)  # and the sampler keeps reading after close() returned
    finally:
        stop.set()
        sampler.join()
    assert len(samples) > 20
    wrong = [h for h in samples if _total(h) != logged]
    assert not wrong, f"{len(wrong)} of {len(samples)} samples do not add up: {wrong[:3]}"
    assert _total(after) == logged and after.queued == 0, after
    assert after.failed == logged and after.dropped == 0, after


def test_the_counts_add_up_at_every_moment_with_sampling_and_a_rate_limit(
    hanging: LocalReceiver,
) -> None:
    from workflow_traces.pipeline.process import record_process

    handler = _sink(hanging)
    # Set before anything is logged, as the factory does for a configured sink.
    handler.channel.process = record_process(sample={"INFO": 0.5}, max_records_per_second=40)
    logged = 300
    _log(handler, logged)
    samples: list[SinkHealth] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(handler.health())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        time.sleep(0.5)
        handler.close(timeout=0.5)
        after = handler.health()
        time.sleep(0.1)
    finally:
        stop.set()
        sampler.join()
    wrong = [h for h in samples if _total(h) != logged]
    assert not wrong, f"{len(wrong)} of {len(samples)} samples do not add up: {wrong[:3]}"
    assert _total(after) == logged and after.queued == 0, after
    # The worker sampled the batch it took (then hung on its request); close() failed the rest.
    assert after.sampled > 0 and after.dropped == 0, after
    assert after.failed == logged - after.sampled - after.limited, after


def test_a_record_logged_after_close_is_dropped_and_counted(hanging: LocalReceiver) -> None:
    handler = _sink(hanging)
    _log(handler, 10)
    handler.close(timeout=0.2)
    _log(handler, 3)  # refused: the sink is closed (reported, fail_silently=True)
    health = handler.health()
    assert (health.failed, health.dropped, health.queued) == (10, 3, 0), health


def test_a_trace_with_a_hanging_sink_closes_on_time_and_the_other_sink_has_everything(
    hanging: LocalReceiver, tmp_path: Any
) -> None:
    from workflow_traces import get_trace, open_store

    extras = {
        "trace_type": "multi",
        "handlers": [
            {"type": "sqlite", "path": str(tmp_path / "t.db")},
            {
                "type": "restapi",
                "service_type": "generic",
                "api_url": hanging.url,
                "flush_interval": 0.05,
                "timeout": 10.0,
            },
        ],
    }
    trace = get_trace("hang-run", extras=extras)
    for i in range(120):
        trace.info(f"m{i}")
    time.sleep(0.3)  # a request is in flight
    timeout = 1.5
    start = time.monotonic()
    trace.close(timeout=timeout)
    took = time.monotonic() - start
    assert took <= timeout + 0.5, f"close(timeout={timeout}) took {took:.2f} s"
    health = trace.health()
    (rest,) = (h for name, h in health.items() if name.startswith("restapi"))
    (sqlite,) = (h for name, h in health.items() if name.startswith("sqlite"))
    assert (rest.written, rest.failed, rest.dropped, rest.queued) == (0, 120, 0, 0), rest
    assert (sqlite.written, sqlite.failed, sqlite.dropped, sqlite.queued) == (120, 0, 0, 0)
    records = open_store(tmp_path / "t.db").get_run("hang-run").records
    assert sorted(r.message for r in records) == sorted(f"m{i}" for i in range(120))
