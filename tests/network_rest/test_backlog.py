"""A backlog goes in few requests: with the default ``buffer_size`` (50) the worker hands the
exporter about 1,000 records at once, and the encoder packs them into requests within the
service's limits (Datadog: at most 1,000 entries a request). Against a real receiver on
127.0.0.1; records counted by record_id."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from rest_helpers import messages

from workflow_traces.exporters.rest.datadog import DATADOG_MAX_ENTRIES
from workflow_traces.exporters.rest.handler import BACKLOG_RECORDS

pytestmark = pytest.mark.network

#: The worker does not wake on its own during the test: the backlog waits for flush().
_IDLE = 60.0


def _log(logger: Any, n: int) -> None:
    for i in range(n):
        logger.info("m%d", i)


def _arrived_once(receiver: Any, n: int) -> None:
    counts = Counter(receiver.record_ids())
    assert len(counts) == n and max(counts.values()) == 1
    assert sorted(messages(receiver), key=lambda m: int(m[1:])) == [f"m{i}" for i in range(n)]


def test_a_backlog_of_small_batches_goes_in_requests_of_1000(receivers: Any, sinks: Any) -> None:
    receiver = receivers("datadog")
    handler, logger = sinks(
        api_url=receiver.url, service_type="datadog", api_key="k", flush_interval=_IDLE
    )
    assert handler.buffer_size == 50
    _log(logger, 2500)
    handler.flush(20)
    _arrived_once(receiver, 2500)
    sizes = [len(r.records) for r in receiver.accepted()]
    assert sizes == [BACKLOG_RECORDS, BACKLOG_RECORDS, 500]
    assert max(sizes) <= DATADOG_MAX_ENTRIES
    assert len(receiver.requests) == 3  # nothing refused, nothing sent twice
    assert handler.health().written == 2500


def test_a_buffer_size_above_the_backlog_figure_is_kept(receivers: Any, sinks: Any) -> None:
    receiver = receivers("generic")
    handler, logger = sinks(api_url=receiver.url, buffer_size=2000, flush_interval=_IDLE)
    _log(logger, 2500)
    handler.flush(20)
    _arrived_once(receiver, 2500)
    assert [len(r.records) for r in receiver.accepted()] == [2000, 500]


def test_a_few_records_still_go_at_once(receivers: Any, sinks: Any) -> None:
    receiver = receivers("grafana")
    handler, logger = sinks(api_url=receiver.url, service_type="grafana", flush_interval=_IDLE)
    _log(logger, 30)
    handler.flush(20)
    _arrived_once(receiver, 30)
    assert [len(r.records) for r in receiver.accepted()] == [30]
