"""The main demo (``make demo``): a small ETL workflow on the built-in DAG runner, traced to
files and SQLite, then read back and printed as a run tree.

    extract ──┬──► transform   (its "load" stage fails once, then succeeds on retry)
              └──► quality     (runs at the same time as transform)

No server is needed. Everything lands under ./logs/demo.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from workflow_traces.integrations.dag import Job, Stage, Workflow

from workflow_traces import get_trace, open_store, render_tree

OUT = Path("logs/demo")
FILES = OUT / "files"
DATABASE = OUT / "traces.db"

_load_attempts = 0


# -- the stages: plain functions; each takes the params and earlier outputs it names ----------
def fetch_orders(day: str) -> list[dict[str, object]]:
    trace = get_trace()  # the run's trace, stamped etl-demo / extract / fetch_orders
    rng = random.Random(day)
    time.sleep(0.15)  # pretend to call an API
    orders = [
        {"id": i, "customer": rng.randint(1, 20), "amount": round(rng.uniform(5, 250), 2)}
        for i in range(1, 201)
    ]
    trace.info(f"fetched {len(orders)} orders for {day}")
    return orders


def fetch_customers() -> dict[int, str]:
    time.sleep(0.1)
    customers = {i: f"customer-{i:02d}" for i in range(1, 21)}
    get_trace().info(f"fetched {len(customers)} customers")
    return customers


def join(outputs: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    extract = outputs["extract"]
    customers = extract["fetch_customers"]
    rows = [{**o, "name": customers[o["customer"]]} for o in extract["fetch_orders"]]  # type: ignore[attr-defined,index]
    time.sleep(0.1)
    get_trace().info(f"joined {len(rows)} rows")
    return rows


def aggregate(outputs: dict[str, list[dict[str, object]]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in outputs["join"]:
        totals[str(row["name"])] = totals.get(str(row["name"]), 0.0) + float(row["amount"])  # type: ignore[arg-type]
    time.sleep(0.1)
    top = max(totals, key=totals.__getitem__)
    get_trace().info(f"{len(totals)} customers; top spender {top} ({totals[top]:.2f})")
    return totals


def load(outputs: dict[str, dict[str, float]]) -> int:
    global _load_attempts
    _load_attempts += 1
    trace = get_trace()
    time.sleep(0.05)
    if _load_attempts == 1:
        trace.warning("warehouse busy, giving up this attempt")
        raise ConnectionError("warehouse is locked by another writer")
    trace.info(f"loaded {len(outputs['aggregate'])} rows on attempt {_load_attempts}")
    return len(outputs["aggregate"])


def check_orders(outputs: dict[str, dict[str, list[dict[str, float]]]]) -> int:
    orders = outputs["extract"]["fetch_orders"]
    bad = [o for o in orders if o["amount"] <= 0]
    time.sleep(0.2)  # runs while transform runs
    get_trace().info(f"checked {len(orders)} orders: {len(bad)} bad")
    if bad:
        raise ValueError(f"{len(bad)} orders have no amount")
    return len(orders)


WORKFLOW = Workflow(
    "etl-demo",
    jobs=[
        Job(
            "extract",
            stages=[Stage("fetch_orders", fetch_orders), Stage("fetch_customers", fetch_customers)],
        ),
        Job(
            "transform",
            needs=["extract"],
            stages=[
                Stage("join", join),
                Stage("aggregate", aggregate),
                Stage("load", load, retries=2, retry_delay=0.05, timeout=10),
            ],
        ),
        Job("quality", needs=["extract"], stages=[Stage("check_orders", check_orders, timeout=10)]),
    ],
    max_workers=2,
    params={"day": "2024-06-01"},
    extras={
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": str(FILES)},
            {"type": "sqlite", "path": str(DATABASE)},
        ],
        "environment": "demo",
    },
)


def main() -> int:
    result = WORKFLOW.run()
    print(f"Workflow {WORKFLOW.name!r} {result.status} (run_id {result.run_id})\n")

    # Read the run back from both stores: the same tree from each.
    with open_store(DATABASE) as db, open_store(FILES) as folder:
        from_db = db.get_run(result.run_id)
        from_files = folder.get_run(result.run_id)
    tree = from_db.tree
    same = [(n.name, n.status) for n in tree.walk()] == [
        (n.name, n.status) for n in from_files.tree.walk()
    ]

    print(render_tree(tree, logs=True))
    print()
    transform, quality = tree.find("transform", "job"), tree.find("quality", "job")
    assert transform and quality and transform.started and quality.started
    assert transform.ended and quality.ended
    overlap = transform.started < quality.ended and quality.started < transform.ended
    print(f"jobs 'transform' and 'quality' ran at the same time: {overlap}")
    load_attempts = tree.find_all("load", "stage")
    print(f"stage 'load' ran {len(load_attempts)} times: {[n.status for n in load_attempts]}")
    print(f"{from_db.record_count} records; file and SQLite stores agree: {same}")
    print()
    print(f"wrote: {DATABASE}")
    print(f"wrote: {FILES}")
    print(f"  run folder: {FILES / ('run_id=' + result.run_id)}")
    print()
    print("Look again with:")
    print(f"  .venv/bin/workflow-traces runs list {DATABASE}")
    print(f"  .venv/bin/workflow-traces runs show {DATABASE} {result.run_id} --logs")
    print(f"  .venv/bin/workflow-traces runs show {DATABASE} {result.run_id} --level WARNING")
    print()
    print("Open the viewer (timeline and logs, in your browser) with:")
    print(f"  .venv/bin/workflow-traces ui {DATABASE}")
    return 0 if result.ok and same else 1


if __name__ == "__main__":
    sys.exit(main())
