"""Dynamic handler management (spec: "Dynamic Handler Management"): add and remove sinks on a
live trace. The REST API is a local stand-in on 127.0.0.1, so this runs with no network.
"""

from __future__ import annotations

from local_services.receiver import LocalReceiver

from workflow_traces import RestAPIHandler, SQLiteHandler, get_trace, open_store

with LocalReceiver("generic") as api:
    # Create trace with initial handlers
    trace = get_trace(
        run_id="dynamic-example",
        extras={"trace_type": "multi", "handlers": [{"type": "file", "path": "./logs/dynamic"}]},
    )
    trace.info("only the file sink sees this")

    # Add SQLite handler dynamically
    sqlite_handler = SQLiteHandler(
        run_id=trace.run_id,
        parent_run_id=trace.parent_run_id,
        db_path="./logs/dynamic_traces.db",
        extras=trace.extras,
    )
    trace.add_handler(sqlite_handler)

    # Add REST API handler dynamically
    restapi_handler = RestAPIHandler(
        run_id=trace.run_id,
        parent_run_id=trace.parent_run_id,
        api_url=api.url,
        service_type="generic",
        extras=trace.extras,
    )
    trace.add_handler(restapi_handler)
    print(f"Active handlers: {trace.handler_count} {trace.handler_types}")
    trace.info("all three sinks see this")

    # Remove a specific handler (it is not closed by the trace: close it yourself)
    trace.flush()
    trace.remove_handler(sqlite_handler)
    sqlite_handler.close()
    print(f"Active handlers: {trace.handler_count}")
    trace.info("file and REST only")
    trace.close()

    received = [r["message"] for r in api.records()]
    print(f"REST API received: {received}")
    assert received == ["all three sinks see this", "file and REST only"], received

with open_store("./logs/dynamic_traces.db") as store:
    print(f"SQLite holds: {[r.message for r in store.get_run('dynamic-example').records]}")
with open_store("./logs/dynamic") as store:
    print(f"Files hold {store.get_run('dynamic-example').record_count} records")
print("wrote: ./logs/dynamic")
print("wrote: ./logs/dynamic_traces.db")
