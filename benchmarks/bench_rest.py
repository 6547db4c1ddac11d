"""REST sink throughput: records/s end to end, from the first ``trace.info`` call until
``flush()`` returns (every request answered), through RestAPIHandler, for each encoder, into a
LocalReceiver on 127.0.0.1 running in a subprocess.

``run(n)`` returns ``[(label, records/s), ...]``, each the median of ``BENCH_REPEAT`` (3) runs
of ``n`` records, each run with a fresh handler. Every run checks that the receiver accepted
exactly the records sent and that the sink counted none as dropped or failed.

The receiver runs lean (``--lean``): it reads and gunzips each body, counts its records by
their ``record_id`` key (CloudWatch's events by their ``timestamp`` key) and answers like the
service, without decoding every record (set
``BENCH_REST_CHECKED=1`` to have it decode and check each payload as the tests do: then the
receiver, one Python thread parsing JSON, is what is measured). ``BENCH_REST_BUFFER`` sets
``buffer_size`` (records per request); unset, the sink's default (50) is measured, as users get
it: a backlog then goes about 1,000 records a request.

Run on its own (``python benchmarks/bench_rest.py [n]``) it also prints the CPU time the sink's
worker spent per record in ``export()`` (encode, gzip, sign, HTTP): a figure that a busy
machine disturbs less than wall-clock rates.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import REPEAT, median, rest_receiver
from local_services.receiver import SERVICES

from workflow_traces import MultiHandler, RestAPIHandler, Trace
from workflow_traces.exporters.config import NetworkSinkConfig

BUFFER = int(
    os.environ.get("BENCH_REST_BUFFER") or NetworkSinkConfig.model_fields["buffer_size"].default
)
LEAN = os.environ.get("BENCH_REST_CHECKED") != "1"
#: The sink worker's CPU seconds in export() per record, per encoder (median run; by run()).
WORKER_CPU: dict[str, float] = {}

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


def _through(label: str, url: str, keys: dict[str, Any], n: int) -> tuple[float, float, int]:
    """One run: (records/s end to end, worker CPU seconds per record, records sent)."""
    handler = RestAPIHandler(
        "bench-rest",
        api_url=url,
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
    health = handler.health()
    multi.close()
    if health.failed or health.dropped:
        raise RuntimeError(f"{label}: the benchmark lost records: {health}")
    return n / elapsed, spent[0] / n, n + 1


def run(n: int) -> list[tuple[str, float]]:
    """Records/s through RestAPIHandler into a LocalReceiver, for each encoder (median of
    REPEAT runs)."""
    rows = []
    for label, service, keys in ENCODERS:
        with rest_receiver(service, lean=LEAN) as (base, accepted):
            runs = []
            sent = 0
            for _ in range(REPEAT):
                runs.append(_through(label, base + SERVICES[service][0], keys, n))
                sent += runs[-1][2]
            received = accepted()
        if received != sent:
            raise RuntimeError(f"{label}: sent {sent} records, the receiver accepted {received}")
        WORKER_CPU[label] = median([cpu for _, cpu, _ in runs])
        rows.append((f"REST {label}", median([rate for rate, _, _ in runs])))
    return rows


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 50_000
    where = "lean" if LEAN else "decoding and checking every payload"
    print(
        f"records/s end to end, median of {REPEAT} runs of {n:,} (receiver {where}, "
        f"buffer_size {BUFFER}):"
    )
    for label, value in run(n):
        print(f"  {label:40s} {value:12,.0f}")
    print("\nthe sink worker's CPU time per record in export() (encode, gzip, sign, HTTP):")
    for label, cpu in WORKER_CPU.items():
        print(f"  {label:30s} {cpu * 1e6:6.2f} us/record -> {1 / cpu:10,.0f} records/s a core")


if __name__ == "__main__":
    main()
