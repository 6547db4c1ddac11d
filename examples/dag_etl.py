"""A DAG workflow on the built-in runner, defined in Python and in YAML/TOML files.

The stage functions live here; ``dag_etl.yaml`` and ``dag_etl.toml`` name them by import path
(``dag_etl:extract_orders``). This script runs the Python definition, then the YAML and TOML
ones; ``workflow-traces run examples/dag_etl.yaml --param day=2024-06-02`` runs a file from the
command line. Traces go to ./logs/dag_etl (files) and ./logs/dag_etl.db (SQLite).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from workflow_traces.integrations.dag import Job, Stage, Workflow, load_workflow

from workflow_traces import get_trace, open_store, render_tree

SINKS = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "./logs/dag_etl"},
        {"type": "sqlite", "path": "./logs/dag_etl.db"},
    ],
}


# -- stages: each takes the params and outputs it names ----------------------------------------
def extract_orders(day: str, count: int = 50) -> list[dict[str, Any]]:
    orders = [{"id": i, "day": day, "amount": (i * 37) % 200 - 10} for i in range(count)]
    get_trace().info(f"extracted {len(orders)} orders for {day}")
    return orders


def extract_rates() -> dict[str, float]:
    get_trace().info("extracted exchange rates")
    return {"EUR": 1.0, "USD": 1.08}


def validate(outputs: Any) -> list[dict[str, Any]]:
    orders = outputs["extract"]["extract_orders"]
    good = [o for o in orders if o["amount"] > 0]
    get_trace().warning(f"dropped {len(orders) - len(good)} orders with no amount")
    return good


def convert(outputs: Any) -> list[float]:
    rate = outputs["extract"]["extract_rates"]["USD"]
    return [round(o["amount"] * rate, 2) for o in outputs["validate"]]


def summarize(outputs: Any) -> dict[str, float]:
    amounts = outputs["transform"]["convert"]
    summary = {"orders": len(amounts), "total_usd": round(sum(amounts), 2)}
    get_trace().info(f"summary: {summary}")
    return summary


def count_by_day(outputs: Any) -> int:
    return len({o["day"] for o in outputs["extract"]["extract_orders"]})


def build() -> Workflow:
    """The same workflow as dag_etl.yaml / dag_etl.toml, in Python."""
    return Workflow(
        "dag-etl",
        jobs=[
            Job(
                "extract",
                stages=[
                    Stage("extract_orders", extract_orders),
                    Stage("extract_rates", extract_rates),
                ],
            ),
            Job(
                "transform",
                needs=["extract"],
                stages=[
                    Stage("validate", validate),
                    Stage("convert", convert, retries=1, timeout=30),
                ],
            ),
            Job("audit", needs=["extract"], stages=[Stage("count_by_day", count_by_day)]),
            Job("report", needs=["transform", "audit"], stages=[Stage("summarize", summarize)]),
        ],
        max_workers=2,
        params={"day": "2024-06-01"},
        extras=SINKS,
    )


def main() -> int:
    here = Path(__file__).resolve().parent
    ok = True
    for label, workflow in (
        ("python", build()),
        ("yaml", load_workflow(here / "dag_etl.yaml")),
        ("toml", load_workflow(here / "dag_etl.toml")),
    ):
        result = workflow.run(params={"count": 40})
        ok = ok and result.ok
        summary = result.jobs["report"].stages["summarize"].output
        print(f"[{label}] {result.status}: {summary}")
        with open_store("./logs/dag_etl.db") as store:
            print(render_tree(store.get_run(result.run_id).tree))
        print()
    print("wrote: ./logs/dag_etl")
    print("wrote: ./logs/dag_etl.db")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
