"""``ship`` throughput: records/s from a SQLite database (the SQLite sink's own) to a
LocalReceiver on 127.0.0.1 in a subprocess (lean, see ``_servers``), through ``ship()``: the
source read in pages, each batch queued to a RestAPIHandler's channel, flushed, counted as
written and checkpointed.

``run(n)`` returns ``[(label, records/s), ...]``, each the median of ``BENCH_REPEAT`` runs,
each shipping the whole database again (its checkpoint removed). Every run checks that the
receiver accepted exactly the records of the database. Run on its own:
``python benchmarks/bench_ship.py [n]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import REPEAT, median, rest_receiver
from local_services.receiver import SERVICES

from workflow_traces import get_trace
from workflow_traces.shipping.checkpoint import default_path
from workflow_traces.shipping.shipper import ship

#: (label, LocalReceiver service, RestAPIHandler keys)
TARGETS: list[tuple[str, str, dict[str, Any]]] = [
    ("generic ndjson", "generic", {"service_type": "generic", "format": "ndjson"}),
    ("datadog (gzip)", "datadog", {"service_type": "datadog", "api_key": "k"}),
]


def _source(path: Path, n: int) -> None:
    trace = get_trace("bench-ship", extras={"trace_type": "sqlite", "path": str(path)})
    trace.event("workflow", "started", name="bench")
    for i in range(n - 2):
        trace.info(f"processing item {i}")
    trace.event("workflow", "succeeded", name="bench")
    trace.close()


def run(n: int) -> list[tuple[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as name:
        db = Path(name) / "source.db"
        _source(db, n)
        for label, service, keys in TARGETS:
            with rest_receiver(service) as (base, accepted):
                dest = {
                    "type": "restapi",
                    "api_url": base + SERVICES[service][0],
                    "buffer_size": 1000,
                    **keys,
                }
                rates = []
                for _ in range(REPEAT):
                    default_path(db).unlink(missing_ok=True)
                    before = accepted()
                    started = time.perf_counter()
                    result = ship(db, dest, batch_size=20_000)[0]
                    elapsed = time.perf_counter() - started
                    got = accepted() - before
                    if not result.ok or result.sent != n or got != n:
                        raise RuntimeError(
                            f"ship {label}: sent {result.sent} of {n}, the receiver accepted "
                            f"{got}: {result.error}"
                        )
                    rates.append(n / elapsed)
            rows.append((f"ship SQLite -> REST {label}", median(rates)))
    return rows


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else int(os.environ.get("BENCH_N", "100000"))
    print(f"ship: records/s from SQLite to a lean LocalReceiver, median of {REPEAT} runs of {n:,}")
    for label, value in run(n):
        print(f"  {label:40s} {value:12,.0f}  {'ok' if value >= 50_000 else 'MISSED'} (>= 50,000)")


if __name__ == "__main__":
    main()
