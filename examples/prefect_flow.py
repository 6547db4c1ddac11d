"""A Prefect 3 flow traced to files and SQLite: add ``@traced`` under ``@flow``/``@task``.

The root flow ``etl`` runs a task that fails once and succeeds on retry, maps a task over the
rows, and calls a subflow ``publish``. Every ``get_run_logger()`` line and Prefect's own lines
reach ./logs/prefect (files) and ./logs/prefect_traces.db (SQLite), stamped with workflow
(the root flow), job (the flow running), stage (the task), run_id (the flow run id) and
parent_run_id (for the subflow). Lifecycle events come from Prefect's state hooks, one
started/end pair per attempt.

No network needed: without PREFECT_API_URL, Prefect starts its temporary local server (the first
time in a fresh PREFECT_HOME it creates its database, which takes a few seconds).
"""

from __future__ import annotations

import os

# Before Prefect is imported: its server would otherwise report usage to the internet.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect's temporary server can take longer than its default 20 s to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect import flow, get_run_logger, task
from workflow_traces.integrations.prefect import flush, traced

from workflow_traces import open_store, render_tree

SINKS = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "./logs/prefect"},
        {"type": "sqlite", "path": "./logs/prefect_traces.db"},
    ],
}
ATTEMPTS = {"extract": 0}


@task(retries=2, retry_delay_seconds=0)
@traced
def extract(n: int) -> list[int]:
    ATTEMPTS["extract"] += 1
    logger = get_run_logger()
    logger.info("extract attempt %d", ATTEMPTS["extract"])
    if ATTEMPTS["extract"] == 1:
        raise ConnectionError("source not ready yet")  # the retry succeeds
    return list(range(n))


@task
@traced
def transform(row: int) -> int:
    get_run_logger().info("transforming row %d", row)
    return row * row


@flow(name="publish")
@traced
def publish(rows: list[int]) -> int:
    get_run_logger().info("publishing %d rows", len(rows))
    return sum(rows)


@flow(name="etl")
@traced(extras=SINKS)  # without extras, the TRACE_* settings choose the sinks
def etl(n: int = 4) -> int:
    rows = extract(n)
    squares = transform.map(rows).result()
    return publish(squares)


def main() -> None:
    state = etl(return_state=True)
    run_id = str(state.state_details.flow_run_id)
    print(f"etl returned {state.result()} (flow run {run_id})")
    flush()  # the sinks write on their own threads; wait for them before reading back

    with open_store("./logs/prefect_traces.db") as store:
        run = store.get_run(run_id)
        print(render_tree(run.tree))
        for child in run.child_runs:
            print(render_tree(store.get_run(child.run_id).tree))
        line = next(r for r in run.logs if r.message.startswith("extract attempt 2"))
        print(
            f"a task's log line: workflow={line.workflow_name} job={line.job_name} "
            f"stage={line.stage_name} task_run_id={line.extras['task_run_id']}"
        )
    print("wrote: logs/prefect")
    print("wrote: logs/prefect_traces.db")


if __name__ == "__main__":
    main()
