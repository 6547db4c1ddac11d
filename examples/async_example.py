"""Async support (spec: "Async Support"): ainfo/adebug never block the event loop."""

from __future__ import annotations

import asyncio

from workflow_traces import get_trace, open_store

EXTRAS = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "./logs/async"},
        {"type": "sqlite", "path": "./logs/async_traces.db"},
    ],
}


async def async_workflow() -> None:
    trace = get_trace(run_id="async-example", extras=EXTRAS)

    try:
        await trace.ainfo("Starting async workflow")
        await trace.adebug("Processing async data")

        # Simulate async work: many tasks logging at once through the same trace
        async def worker(n: int) -> None:
            await asyncio.sleep(0.01)
            await trace.ainfo(f"task {n} done")

        await asyncio.gather(*(worker(n) for n in range(20)))

        await trace.ainfo("Async workflow completed")
    finally:
        await trace.aclose()  # close() works too; aclose() waits off the event loop


# Run async workflow
asyncio.run(async_workflow())

with open_store("./logs/async_traces.db") as store:
    run = store.get_run("async-example")
first, last = run.records[0].message, run.records[-1].message
print(f"{run.record_count} records: first {first!r}, last {last!r}")
print("wrote: ./logs/async")
print("wrote: ./logs/async_traces.db")
