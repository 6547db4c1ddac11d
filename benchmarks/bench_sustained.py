"""Issue 16's rows: logging that never stops.

Each run is a fresh process (so memory growth is this run's alone), which first times the
baseline (a stdlib ``logging.FileHandler``) on the same number of records, then ours:

- file + SQLite at 10,000, 100,000 and 1,000,000 records: the caller's cost, records/s end to
  end (first call until ``flush()`` returns), and the largest RSS growth seen after the first
  record reached each sink;
- a dead network sink (a REST sink whose port refuses connections, default settings) beside
  the file sink, 1,000,000 records: the caller's cost, the memory growth, and how many distinct
  record ids the file sink wrote.

Run alone: ``python benchmarks/bench_sustained.py``; ``make bench`` runs it after the burst rows.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Runs per row (each a fresh process); the median is kept.
REPEAT = int(os.environ.get("BENCH_SUSTAINED_REPEAT", "3"))
SIZES = (10_000, 100_000, 1_000_000)
DEAD_N = 1_000_000


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _refused_url() -> str:
    """A URL on 127.0.0.1 whose port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/logs"


def child(kind: str, n: int) -> dict[str, Any]:
    """One run, in this (fresh) process."""
    logging.getLogger("workflow_traces").setLevel(logging.CRITICAL)  # the dead sink's reports
    from run import baseline

    from workflow_traces import get_trace
    from workflow_traces.exporters.file import read_records

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = baseline(tmp, n=n)[0] * n / 1e6  # the stdlib FileHandler's seconds
        handlers: list[dict[str, Any]] = [{"type": "file", "path": str(tmp / "files")}]
        if kind == "multi":
            handlers.append({"type": "sqlite", "path": str(tmp / "t.db")})
        else:
            handlers.append({"type": "restapi", "api_url": _refused_url()})
        trace = get_trace(
            f"sustained-{kind}",
            extras={"trace_type": "multi", "handlers": handlers, "workflow_name": "bench"},
        )
        # Growth while records pass: measured once the first record reached each sink (the
        # dead sink's first attempt failed), so the sinks' own set-up is not counted.
        trace.info("warm-up")
        trace.flush(timeout=2)
        gc.collect()
        before = peak = _rss_mib()
        info = trace.info
        start = time.perf_counter()
        for i in range(n):
            info(f"processing item {i}")
            if i % 10_000 == 0:
                peak = max(peak, _rss_mib())
        caller = time.perf_counter() - start
        if kind == "multi":
            trace.flush()
        else:
            trace.handler.handlers[0].flush()  # the file sink; the dead one never empties
        total = time.perf_counter() - start
        peak = max(peak, _rss_mib())
        trace.close(timeout=5)
        result: dict[str, Any] = {
            "caller_ratio": caller / base,
            "caller_us": caller / n * 1e6,
            "rate": n / total,
            "rate_ratio": base / total,
            "growth_mib": peak - before,
        }
        if kind == "dead":
            (folder,) = (tmp / "files").iterdir()
            ids = {r.record_id for r in read_records(folder / "traces.jsonl")}
            result["file_ids"] = len(ids) - 1  # less the warm-up record
        return result


def measure(kind: str, n: int) -> dict[str, float]:
    """The medians of REPEAT runs, each in a fresh process."""
    runs = []
    for _ in range(REPEAT):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _verdict(value: float, op: str, target: float) -> str:
    ok = value <= target if op == "<=" else value >= target
    return f"{op} {target:<5} {'ok' if ok else 'MISSED'}"


def main() -> None:
    print(
        f"\nsustained: file + SQLite, each row the median of {REPEAT} runs, each a fresh process "
        "that times\nthe baseline on as many records just before; memory: the largest RSS "
        "growth after the first record\n"
    )
    print(f"  {'records':>10} {'caller us':>10} {'ratio':>7} {'rec/s':>10} {'ratio':>6} {'MiB':>6}")
    rows = {}
    for n in SIZES:
        row = rows[n] = measure("multi", n)
        print(
            f"  {n:10,} {row['caller_us']:10.2f} {row['caller_ratio']:7.3f} {row['rate']:10,.0f} "
            f"{row['rate_ratio']:6.2f} {row['growth_mib']:6.1f}"
        )
    dead = measure("dead", DEAD_N)
    print(
        f"\n  a dead REST sink beside the file sink, {DEAD_N:,} records: caller "
        f"{dead['caller_us']:.2f} us ({dead['caller_ratio']:.3f}), memory "
        f"+{dead['growth_mib']:.1f} MiB, the file sink wrote {dead['file_ids']:,.0f} ids"
    )
    one = rows[SIZES[-1]]
    checks = [
        ("1M file + SQLite: caller", one["caller_ratio"], "<=", 0.25),
        ("1M file + SQLite: end to end", one["rate_ratio"], ">=", 3.0),
        ("1M file + SQLite: memory growth MiB", one["growth_mib"], "<=", 64),
        ("dead sink: memory growth MiB", dead["growth_mib"], "<=", 96),
        ("dead sink: caller", dead["caller_ratio"], "<=", 0.3),
        ("dead sink: file ids written", dead["file_ids"], ">=", DEAD_N),
    ]
    print("\n  targets:")
    for label, value, op, target in checks:
        print(f"    {label:40} {value:10.3f}  {_verdict(value, op, target)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
