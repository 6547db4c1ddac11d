"""Basic configuration (spec: "Basic Configuration"): one trace, file and SQLite at once.

Writes under ./logs: the run folder in ./logs/multi-example and rows in
./logs/multi_traces.db.
"""

from __future__ import annotations

from workflow_traces import get_trace, open_store

# Configure multi-handler with file and SQLite
extras = {
    "trace_type": "multi",
    "handlers": [
        {
            "type": "file",
            "path": "./logs/multi-example",
            "buffer_size": 8192,
            "flush_interval": 1.0,
        },
        {
            "type": "sqlite",
            "path": "./logs/multi_traces.db",
            "buffer_size": 100,
            "flush_interval": 2.0,
        },
    ],
    "fail_silently": True,
    "workflow_name": "multi-handler-workflow",
    "stage_name": "multi-stage",
    "job_name": "multi-job",
}

# Create trace instance
trace = get_trace(run_id="multi-example-001", parent_run_id="parent-001", extras=extras)

# Use the trace
trace.info("Starting multi-handler workflow")
trace.debug("Processing data")
trace.error("Error occurred")
trace.close()

# Read it back: both sinks hold the same three records.
for location in ("./logs/multi-example", "./logs/multi_traces.db"):
    with open_store(location) as store:
        run = store.get_run("multi-example-001")
    print(f"{location}: {[f'{r.level} {r.message}' for r in run.records]}")
    print(f"wrote: {location}")
