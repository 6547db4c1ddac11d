"""Handler inspection (spec: "Handler Inspection"): count, types, and handlers by type."""

from __future__ import annotations

from workflow_traces import SQLiteHandler, WorkflowFileHandler, get_trace

trace = get_trace(
    run_id="inspection-example",
    extras={
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": "./logs/inspection"},
            {"type": "sqlite", "path": "./logs/inspection_traces.db"},
        ],
    },
)

# Get handler information
print(f"Handler count: {trace.handler_count}")
print(f"Handler types: {trace.handler_types}")

# Get handlers by type
file_handlers = trace.get_handlers_by_type(WorkflowFileHandler)
sqlite_handlers = trace.get_handlers_by_type(SQLiteHandler)
print(f"File handlers: {len(file_handlers)}, SQLite handlers: {len(sqlite_handlers)}")

# Get specific handler
file_handler = trace.get_handler_by_type(WorkflowFileHandler)
if file_handler:
    print(f"File handler path: {file_handler.log_dir}")

trace.info("inspected")
trace.flush()
# Each sink's health: records written, dropped, failed, queued, last error.
for name, health in trace.health().items():
    print(f"{name}: written={health.written} dropped={health.dropped} failed={health.failed}")
trace.close()
print("wrote: ./logs/inspection")
print("wrote: ./logs/inspection_traces.db")
