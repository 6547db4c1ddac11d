"""The caller's cost with all four sink types at once: µs per ``trace.info`` call with a file,
an SQLite, a REST (Datadog, to a LocalReceiver) and an Elasticsearch (to a LocalElasticsearch)
sink configured together, against the same with the file sink alone.

``run(n)`` returns three rows: each caller cost, the median of ``BENCH_REPEAT`` (5) runs of
``n`` records, and their ratio (target: at most 1.2). Each run builds a fresh trace with
``get_trace`` and the handlers' config, times the loop of ``trace.info`` calls only, then
flushes and closes the trace outside the clock and checks that nothing was dropped or failed
and that the services received every record. The one-sink and four-sink runs alternate (one,
four, four, one, ...), so a busy moment of the shared machine falls on both alike. The services
run in subprocesses (see ``_servers``), as real ones never share the caller's process.

The sinks keep their default flush intervals (1 s and more) and queue sizes, and the REST and
Elasticsearch sinks send 1000 and 5000 records a request (as in the throughput rows), so what
is timed is the caller's own work: building one record and queueing it once per sink.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import REPEAT, es_server, median, rest_receiver

from workflow_traces import get_trace


def _caller_us(run_id: str, handlers: list[dict[str, Any]], n: int) -> float:
    """One run: the caller's µs per record through ``trace.info`` with ``handlers``."""
    trace = get_trace(
        run_id, extras={"trace_type": "multi", "handlers": handlers, "workflow_name": "bench"}
    )
    info = trace.info
    gc.collect()
    start = time.perf_counter()
    for i in range(n):
        info(f"processing item {i}")
    caller = time.perf_counter() - start
    trace.flush()
    for handler in trace.handler.handlers:
        health = handler.health()  # type: ignore[attr-defined]
        if health.failed or health.dropped:
            raise RuntimeError(f"the benchmark lost records: {health}")
    trace.close()
    return caller / n * 1e6


def run(n: int) -> list[tuple[str, float]]:
    """Caller µs/record with four sinks and with the file sink alone, and their ratio."""
    one: list[float] = []
    four: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        rest_receiver("datadog") as (rest_url, rest_accepted),
        es_server() as (es_url, es_count),
    ):
        for rep in range(REPEAT):
            file_sink = {"type": "file", "path": f"{tmp}/one-{rep}"}
            if rep % 2 == 0:
                one.append(_caller_us(f"bench-one-{rep}", [file_sink], n))
            handlers = [
                {"type": "file", "path": f"{tmp}/four-{rep}"},
                {"type": "sqlite", "path": f"{tmp}/four-{rep}.db"},
                {
                    "type": "restapi",
                    "service_type": "datadog",
                    "api_url": rest_url,
                    "api_key": "bench",
                    "buffer_size": 1000,
                },
                {
                    "type": "elasticsearch",
                    "es_hosts": es_url,
                    "index_name": f"bench-four-{rep}",
                    "buffer_size": 5000,
                },
            ]
            four.append(_caller_us(f"bench-four-{rep}", handlers, n))
            if rep % 2 == 1:
                one.append(_caller_us(f"bench-one-{rep}", [file_sink], n))
            held = es_count(f"bench-four-{rep}")
            if held != n:
                raise RuntimeError(f"four sinks: sent {n} records, Elasticsearch holds {held}")
        received = rest_accepted()
        if received != n * REPEAT:
            raise RuntimeError(f"four sinks: sent {n * REPEAT} records, REST received {received}")
    one_us, four_us = median(one), median(four)
    return [
        ("caller us/record, file sink alone", one_us),
        ("caller us/record, file + SQLite + REST + Elasticsearch", four_us),
        ("four sinks / file alone (target <= 1.2)", four_us / one_us),
    ]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 50_000
    print(f"median of {REPEAT} runs of {n:,} records:")
    for label, value in run(n):
        print(f"  {label:56s} {value:8.3f}")


if __name__ == "__main__":
    main()
