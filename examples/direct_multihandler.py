"""Direct handler usage (spec: "Direct Handler Usage"): a MultiHandler on a stdlib logger."""

from __future__ import annotations

import logging

from workflow_traces import MultiHandler, SQLiteHandler, WorkflowFileHandler, open_store

# Create individual handlers
file_handler = WorkflowFileHandler(
    run_id="direct-example",
    base_path="./logs/direct",
    extras={"workflow_name": "direct-test"},
)

sqlite_handler = SQLiteHandler(
    run_id="direct-example",
    db_path="./logs/direct_traces.db",
    extras={"workflow_name": "direct-test"},
)

# Create multi-handler
multi_handler = MultiHandler(
    run_id="direct-example",
    handlers=[file_handler, sqlite_handler],
    extras={"workflow_name": "direct-test"},
    fail_silently=True,
)

# Use with Python logger
logger = logging.getLogger("direct-test")
logger.setLevel(logging.DEBUG)
logger.addHandler(multi_handler)

# Log messages
logger.info("Direct multi-handler test")
logger.debug("Debug information")
logger.warning("Warning message")
logger.error("Error message")

# Cleanup
logger.removeHandler(multi_handler)
multi_handler.close()

with open_store("./logs/direct_traces.db") as store:
    run = store.get_run("direct-example")
print(f"{run.record_count} records of {run.workflow_name!r}: {[r.level for r in run.records]}")
print("wrote: ./logs/direct")
print("wrote: ./logs/direct_traces.db")
