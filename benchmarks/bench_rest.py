"""REST sink throughput: records/s end to end, from a Trace call to the record decoded by a
LocalReceiver on 127.0.0.1, through RestAPIHandler, for each encoder.

``run(n)`` returns ``[(label, records/s), ...]``. The clock starts before the first call and
stops when ``flush()`` returns, that is once every request has been answered; the receiver's
count of accepted records is checked against ``n``.

The receiver runs in a subprocess (``python -m workflow_traces.testing.receiver``), as a real
service never shares the caller's process and GIL; ``BENCH_REST_IN_PROCESS=1`` runs it in this
process instead (a pessimistic figure: the receiver's gunzip and JSON parsing then compete with
the sink's worker). ``BENCH_REST_BUFFER`` sets buffer_size (records per batch; default 1000,
Datadog's largest array).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from workflow_traces import MultiHandler, RestAPIHandler, Trace
from workflow_traces.testing import LocalReceiver
from workflow_traces.testing.receiver import SERVICES

BUFFER = int(os.environ.get("BENCH_REST_BUFFER", "1000"))
#: CPU seconds the sink's worker spent in export(), per encoder label (filled by run()).
WORKER_CPU: dict[str, float] = {}
IN_PROCESS = os.environ.get("BENCH_REST_IN_PROCESS") == "1"
LEAN = os.environ.get("BENCH_REST_CHECKED") != "1"

#: (label, LocalReceiver service, RestAPIHandler keys)
ENCODERS: list[tuple[str, str, dict[str, Any]]] = [
    ("datadog (gzip)", "datadog", {"service_type": "datadog", "api_key": "k"}),
    ("grafana loki (gzip)", "grafana", {"service_type": "grafana"}),
    ("generic json", "generic", {"service_type": "generic", "format": "json"}),
    ("generic ndjson", "generic", {"service_type": "generic", "format": "ndjson"}),
    ("generic otlp (gzip)", "otlp", {"service_type": "generic", "format": "otlp"}),
    (
        "cloudwatch (SigV4)",
        "cloudwatch",
        {
            "service_type": "cloudwatch",
            "region": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        },
    ),
]


@contextmanager
def _receiver(service: str) -> Iterator[tuple[str, Any]]:
    """(base URL, a function giving the accepted record count)."""
    if IN_PROCESS:
        with LocalReceiver(service, keep_bodies=False, lean=LEAN) as receiver:
            yield receiver.base_url, lambda: receiver.accepted_records
        return
    code = "from workflow_traces.testing.receiver import main; main()"
    cmd = [sys.executable, "-c", code, "--service", service, "--port", "0"]
    if LEAN:
        cmd.append("--lean")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()

        def count() -> int:
            with urllib.request.urlopen(f"{url}/_stats") as resp:
                return int(orjson.loads(resp.read())["records"])

        yield url, count
    finally:
        proc.terminate()
        proc.wait(10)


def _through(label: str, service: str, keys: dict[str, Any], n: int) -> float:
    with _receiver(service) as (base, count):
        handler = RestAPIHandler(
            "bench-rest",
            api_url=base + SERVICES[service][0],
            buffer_size=BUFFER,
            flush_interval=0.2,
            queue_size=max(n + 10, 100_000),
            fail_silently=False,
            **keys,
        )
        exporter = handler.channel.exporter
        export = exporter.export
        spent = [0.0]

        def timed(batch: Any) -> Any:  # the worker's own CPU time: robust to a busy machine
            started = time.thread_time()
            try:
                return export(batch)
            finally:
                spent[0] += time.thread_time() - started

        exporter.export = timed  # type: ignore[method-assign]
        multi = MultiHandler("bench-rest", handlers=[handler], extras={"workflow_name": "bench"})
        trace = Trace("bench-rest", extras={"workflow_name": "bench"}, handler=multi)
        trace.info("warm-up")  # connect (and, for CloudWatch, create group and stream)
        multi.flush()
        info = trace.info
        gc.collect()
        spent[0] = 0.0
        start = time.perf_counter()
        for i in range(n):
            info(f"processing item {i}")
        multi.flush()
        elapsed = time.perf_counter() - start
        WORKER_CPU[label] = spent[0]
        health = handler.health()
        multi.close()
        received = count()
    if health.failed or health.dropped or received != n + 1:
        raise RuntimeError(f"{label}: benchmark lost records: {health}, received {received}")
    return n / elapsed


def run(n: int) -> list[tuple[str, float]]:
    """Records/s through RestAPIHandler into a LocalReceiver, for each encoder."""
    where = "in process" if IN_PROCESS else "in a subprocess"
    return [
        (f"rest {label} records/s (receiver {where})", _through(label, service, keys, n))
        for label, service, keys in ENCODERS
    ]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 100_000
    for label, value in run(n):
        print(f"{label:60s} {value:12,.0f}")
    print("\nthe sink worker's CPU time per record (encode, gzip, sign, HTTP):")
    for label, cpu in WORKER_CPU.items():
        print(f"  {label:30s} {cpu / n * 1e6:6.1f} us/record -> {n / cpu:10,.0f} records/s a core")


if __name__ == "__main__":
    main()
