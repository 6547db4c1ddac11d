"""The plain-Python adapter: workflow/job/stage scopes and @traced, in ordinary code.

Every record is stamped with its workflow, job and stage; each scope emits started and
succeeded/failed events with durations; the run reads back as a tree. Writes to
./logs/plain (files) and ./logs/plain_traces.db (SQLite).
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

from workflow_traces.integrations.plain import Skipped, job, stage, traced, workflow

from workflow_traces import get_trace, open_store, render_tree

SINKS = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "./logs/plain"},
        {"type": "sqlite", "path": "./logs/plain_traces.db"},
    ],
}


@traced  # inside a job: runs as a stage named "clean"
def clean(rows: list[int]) -> list[int]:
    get_trace().info(f"cleaning {len(rows)} rows")  # stamped plain-etl / transform / clean
    return [r for r in rows if r >= 0]


@traced(stage="publish")  # async works the same way
async def publish(rows: list[int]) -> None:
    await get_trace().ainfo(f"publishing {len(rows)} rows")
    await asyncio.sleep(0.01)


def shard(n: int) -> int:
    get_trace().info(f"shard {n}")  # a thread started with copy_context() keeps the names
    return n


with workflow("plain-etl", run_id="plain-example", environment="example", **SINKS) as trace:
    trace.info("starting")
    with job("extract"):
        with stage("fetch") as st:
            st.info("fetching rows")
            rows = [3, -1, 4, 1, -5, 9]
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(contextvars.copy_context().run, shard, n) for n in range(3)]
            print("shards:", [f.result() for f in futures])
    with job("transform"):
        rows = clean(rows)
        try:
            with stage("enrich"):
                raise LookupError("reference table missing")
        except LookupError:
            trace.warning("enrich failed; going on without it")
        with stage("optional-step"):
            raise Skipped("nothing to do today")
    with job("load"):
        asyncio.run(publish(rows))

with open_store("./logs/plain_traces.db") as store:
    run = store.get_run("plain-example")
print(render_tree(run.tree, logs=True))
print("wrote: ./logs/plain")
print("wrote: ./logs/plain_traces.db")
