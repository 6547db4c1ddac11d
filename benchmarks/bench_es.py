"""Elasticsearch throughput: records/s end to end, from a Trace call to the document held by a
LocalElasticsearch on 127.0.0.1, through ElasticsearchHandler and the official client.

``run(n)`` returns ``[(label, value), ...]``. The clock stops when ``flush()`` returns, that is
once every bulk request has been answered; the document count is checked against ``n``.

Three set-ups: the server in this process (it then shares the GIL with the caller and the
sink's worker: a pessimistic figure); the server in a subprocess (closer to a real cluster,
which never runs in the caller's process); and the same with ``check_documents=False``, where
the server keeps documents as received instead of parsing each one against the mapping, so the
figure is the client side's (the sink sends one bulk request at a time and waits for its
answer, so a slow server slows the sink). ``BENCH_ES_BUFFER`` sets the handler's buffer_size
(records per bulk request; default 5000).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

from workflow_traces import MultiHandler, Trace
from workflow_traces._elasticsearch import ElasticsearchHandler
from workflow_traces.testing import LocalElasticsearch

BUFFER = int(os.environ.get("BENCH_ES_BUFFER", "5000"))


def _count(url: str, index: str) -> int:
    with urllib.request.urlopen(f"{url}/{index}/_refresh", data=b"") as resp:
        resp.read()
    with urllib.request.urlopen(f"{url}/{index}/_count") as resp:
        import json

        return int(json.loads(resp.read())["count"])


def _through(url: str, n: int, index: str) -> tuple[float, float]:
    handler = ElasticsearchHandler(
        "bench-es",
        es_hosts=url,
        index_name=index,
        buffer_size=BUFFER,
        flush_interval=0.2,
        queue_size=max(2 * BUFFER, 200_000),
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
    caller = time.perf_counter() - start
    multi.flush()
    elapsed = time.perf_counter() - start
    health = handler.health()
    multi.close()
    if health.failed or health.dropped:
        raise RuntimeError(f"benchmark lost records: {health}")
    return n / elapsed, caller / n * 1e6


def _in_process(n: int, check: bool) -> tuple[float, float]:
    with LocalElasticsearch(record_requests=0, check_documents=check) as es:
        rate, caller = _through(es.url, n, "bench-in-process")
        assert es.count("bench-in-process") == n + 1, es.count("bench-in-process")
    return rate, caller


def _subprocess(n: int, check: bool) -> tuple[float, float]:
    code = "from workflow_traces.testing.elasticsearch import main; main()"
    cmd = [sys.executable, "-c", code, "--port", "0"]
    if not check:
        cmd.append("--no-check-documents")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        rate, caller = _through(url, n, "bench-subprocess")
        count = _count(url, "bench-subprocess")
        assert count == n + 1, count
    finally:
        proc.terminate()
        proc.wait(10)
    return rate, caller


def _file_handler_baseline(n: int) -> float:
    """stdlib logging.FileHandler records/s in this run: the scale for a noisy machine."""
    import logging
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        logger = logging.getLogger("bench_es.baseline")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        handler = logging.FileHandler(os.path.join(tmp, "baseline.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
        logger.addHandler(handler)
        start = time.perf_counter()
        for i in range(n):
            logger.info("processing item %d", i)
        elapsed = time.perf_counter() - start
        logger.removeHandler(handler)
        handler.close()
    return n / elapsed


def run(n: int) -> list[tuple[str, float]]:
    """Records/s through ElasticsearchHandler into LocalElasticsearch, and the caller's cost;
    with stdlib FileHandler records/s measured in the same run for scale."""
    baseline = _file_handler_baseline(min(n, 50_000))
    rate_in, caller_in = _in_process(n, check=True)
    rate_sub, caller_sub = _subprocess(n, check=True)
    rate_lean, caller_lean = _subprocess(n, check=False)
    b = f"buffer_size={BUFFER}"
    return [
        ("stdlib FileHandler records/s (same run, for scale)", baseline),
        (f"elasticsearch records/s (server in process, {b})", rate_in),
        ("elasticsearch caller us/record (server in process)", caller_in),
        (f"elasticsearch records/s (server in a subprocess, {b})", rate_sub),
        ("elasticsearch caller us/record (server in a subprocess)", caller_sub),
        (f"elasticsearch records/s (subprocess, documents not checked, {b})", rate_lean),
        ("elasticsearch caller us/record (subprocess, documents not checked)", caller_lean),
    ]


def main(argv: list[str] | None = None) -> None:
    args: list[Any] = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 100_000
    for label, value in run(n):
        print(f"{label:70s} {value:12,.1f}")


if __name__ == "__main__":
    main()
