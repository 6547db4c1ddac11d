"""The public exporter interface, as its docstrings and the README's "Writing a sink" state it:
every method runs on the sink's one worker thread; ``flush`` follows a flush or close, and
``shutdown`` comes once, last; what ``export`` raises decides retry, failure or split; the
exception types are part of the TraceError tree. The exporters here are real ones written
against the interface (they keep what they are given), not mocks of our code."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

import pytest

import workflow_traces
from workflow_traces import (
    BufferedHandler,
    Exporter,
    ExportError,
    MultiHandler,
    PayloadTooLargeError,
    PermanentError,
    Record,
    RetryableError,
    SinkError,
    Trace,
    TraceError,
)
from workflow_traces.exporters import NetworkSinkConfig
from workflow_traces.pipeline import retry as pipeline_retry
from workflow_traces.testing import capture_traces


class Keeping(Exporter):
    """Keeps each batch and the thread and order of every call; fails as told."""

    name = "keeping"

    def __init__(self, fail: list[BaseException] | None = None, split_over: int = 0) -> None:
        self.records: list[Record] = []
        self.calls: list[tuple[str, int]] = []
        self.fail = list(fail or [])
        self.split_over = split_over
        self.exports = 0

    def _note(self, what: str) -> None:
        self.calls.append((what, threading.get_ident()))

    def export(self, batch: Sequence[Record]) -> None:
        self._note("export")
        self.exports += 1
        if self.fail:
            raise self.fail.pop(0)
        if self.split_over and len(batch) > self.split_over:
            raise PayloadTooLargeError(f"{len(batch)} records is too many")
        self.records.extend(batch)

    def flush(self, timeout: float | None = None) -> bool:
        self._note("flush")
        return True

    def shutdown(self) -> None:
        self._note("shutdown")


def _trace(exporter: Any, *, retry: Any = None, fail_silently: bool = True) -> Trace:
    handler = BufferedHandler(
        exporter, run_id="r1", flush_interval=0.05, retry=retry, fail_silently=fail_silently
    )
    return Trace("r1", handler=MultiHandler("r1", handlers=[handler], fail_silently=fail_silently))


def test_every_call_is_on_one_worker_thread_flush_follows_a_flush_and_shutdown_is_last() -> None:
    exporter = Keeping()
    trace = _trace(exporter)
    trace.info("one")
    trace.flush()
    assert exporter.calls[-1][0] == "flush"
    trace.info("two")
    trace.close()
    names = [name for name, _ in exporter.calls]
    assert names[-2:] == ["flush", "shutdown"] and names.count("shutdown") == 1
    threads = {ident for _, ident in exporter.calls}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert [r.message for r in exporter.records] == ["one", "two"]


def test_a_permanent_error_is_not_retried_and_counts_the_records_failed() -> None:
    exporter = Keeping(fail=[PermanentError("refused")])
    trace = _trace(exporter)
    for i in range(3):
        trace.info(f"m{i}")
    trace.close()
    (health,) = trace.health().values()
    assert exporter.exports == 1
    assert (health.written, health.failed) == (0, 3)
    assert health.last_error == "PermanentError: refused"


def test_a_retryable_error_is_sent_again() -> None:
    exporter = Keeping(fail=[RetryableError("busy"), OSError("a hiccup")])
    trace = _trace(exporter)
    trace.info("kept")
    trace.close()
    (health,) = trace.health().values()
    assert exporter.exports == 3  # two failures (any exception counts as retryable), then ok
    assert (health.written, health.failed) == (1, 0)
    assert [r.message for r in exporter.records] == ["kept"]


class _Net(NetworkSinkConfig):
    type: Literal["net"] = "net"


def test_payload_too_large_splits_the_batch_of_a_network_sink() -> None:
    exporter = Keeping(split_over=1)
    retry = _Net(retry_base_delay=0.01, retry_max_delay=0.05).retry_policy()
    handler = BufferedHandler(exporter, run_id="r1", batch_records=8, retry=retry)
    with capture_traces() as captured:
        trace = Trace("r1", handler=MultiHandler("r1", handlers=[handler]))
        for i in range(8):
            trace.info(f"m{i}")
        trace.close()
    assert len(captured) == 8
    assert sorted(r.record_id for r in exporter.records) == sorted(r.record_id for r in captured)
    assert exporter.exports > 8  # the batch of 8 was refused, then split down to single records
    assert trace.health()[handler.name].written == 8


def test_the_failure_reaches_sink_error_as_a_trace_error() -> None:
    exporter = Keeping(fail=[PermanentError("refused")])
    trace = _trace(exporter, fail_silently=False)
    trace.info("m")
    with pytest.raises(SinkError) as info:
        trace.close()
    (err,) = info.value.failures.values()
    assert isinstance(err, PermanentError) and isinstance(err, TraceError)


def test_an_exporter_that_names_shutdown_close_still_works() -> None:
    class Older:  # does not subclass Exporter: only name, export and close
        name = "older"

        def __init__(self) -> None:
            self.records: list[Record] = []
            self.closed = 0

        def export(self, batch: Sequence[Record]) -> None:
            self.records.extend(batch)

        def close(self) -> None:
            self.closed += 1

    exporter = Older()
    trace = _trace(exporter)
    trace.info("m")
    trace.close()
    assert [r.message for r in exporter.records] == ["m"] and exporter.closed == 1


def test_export_errors_are_in_the_trace_error_tree() -> None:
    assert issubclass(ExportError, TraceError)
    assert issubclass(RetryableError, ExportError) and issubclass(PermanentError, ExportError)
    assert issubclass(PayloadTooLargeError, PermanentError)
    assert RetryableError("x", retry_after=2.5).retry_after == 2.5
    # The pipeline's names are the same classes, not copies.
    assert pipeline_retry.RetryableError is RetryableError
    assert pipeline_retry.PermanentError is PermanentError
    assert pipeline_retry.PayloadTooLargeError is PayloadTooLargeError
    doc = workflow_traces.errors.__doc__ or ""
    for name in ("ExportError", "RetryableError", "PermanentError", "PayloadTooLargeError"):
        assert name in doc


def test_the_exporter_base_needs_export() -> None:
    with pytest.raises(TypeError):
        Exporter()  # type: ignore[abstract]
