"""Elasticsearch throughput: records/s end to end, from the first ``trace.info`` call until
``flush()`` returns (every bulk request answered), through ElasticsearchHandler and the
official client, into a LocalElasticsearch on 127.0.0.1 running in a subprocess.

``run(n)`` returns ``[(label, records/s)]``, the median of ``BENCH_REPEAT`` (5) runs of ``n``
records, each with a fresh handler and index. Every run checks that the index holds exactly the
records sent and that the sink counted none as dropped or failed.

The server keeps each document as received (``--no-check-documents``) rather than parsing it
against the mapping; it still reads each action line and answers per-item statuses, as
Elasticsearch does. ``BENCH_ES_CHECKED=1`` adds a row with a server that parses and checks
every document (then the server, one Python thread, is most of what is measured).
``BENCH_ES_BUFFER`` sets the handler's buffer_size (records per bulk request); unset, the sink's
default (100) is measured, as users get it: a backlog then goes about 1,000 a bulk request.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import REPEAT, es_server, median

from workflow_traces import MultiHandler, Trace
from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
from workflow_traces.settings.sinks import ElasticsearchConfig

BUFFER = int(
    os.environ.get("BENCH_ES_BUFFER") or ElasticsearchConfig.model_fields["buffer_size"].default
)
SIZE = f"buffer_size {BUFFER}"
CHECKED = os.environ.get("BENCH_ES_CHECKED") == "1"


def _through(url: str, n: int, index: str) -> float:
    """One run: records/s end to end."""
    handler = ElasticsearchHandler(
        "bench-es",
        es_hosts=url,
        index_name=index,
        buffer_size=BUFFER,
        flush_interval=0.2,
        queue_size=max(n + 10, 100_000),
        fail_silently=False,
    )
    multi = MultiHandler("bench-es", handlers=[handler], extras={"workflow_name": "bench"})
    trace = Trace("bench-es", extras={"workflow_name": "bench"}, handler=multi)
    trace.info("warm-up")  # connect and create the index before the clock starts
    multi.flush()
    info = trace.info
    gc.collect()
    start = time.perf_counter()
    for i in range(n):
        info(f"processing item {i}")
    multi.flush()
    elapsed = time.perf_counter() - start
    health = handler.health()
    multi.close()
    if health.failed or health.dropped:
        raise RuntimeError(f"the benchmark lost records: {health}")
    return n / elapsed


def _median_rate(n: int, check_documents: bool) -> float:
    rates = []
    with es_server(check_documents) as (url, count):
        for rep in range(REPEAT):
            index = f"bench-{rep}"
            rates.append(_through(url, n, index))
            held = count(index)
            if held != n + 1:
                raise RuntimeError(f"sent {n + 1} records, the index holds {held}")
    return median(rates)


def run(n: int) -> list[tuple[str, float]]:
    """Records/s through ElasticsearchHandler into LocalElasticsearch (median of REPEAT)."""
    rows = [(f"Elasticsearch bulk ({SIZE})", _median_rate(n, False))]
    if CHECKED:
        rows.append(
            (f"Elasticsearch bulk ({SIZE}), server checks documents", _median_rate(n, True))
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    args: list[Any] = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 50_000
    print(f"records/s end to end, median of {REPEAT} runs of {n:,}:")
    for label, value in run(n):
        print(f"  {label:50s} {value:12,.0f}")


if __name__ == "__main__":
    main()
