"""``workflow-traces runs list LOCATION`` and ``runs show LOCATION RUN_ID``: read runs back.

LOCATION is what ``open_store`` takes: a SQLite database, a file-sink folder or (with the
elasticsearch extra) an ``http(s)://`` URL. Exit status: 0, or 2 when the location or run cannot
be read.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from workflow_traces.errors import TraceError

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list traced runs, or show one run as a tree",
        description="Read runs back from a SQLite database, a file-sink folder or a URL.",
    )
    sub = parser.add_subparsers(dest="runs_command", required=True)
    lister = sub.add_parser("list", help="runs, newest first")
    lister.add_argument("location", help="SQLite database, file-sink folder or http(s) URL")
    lister.add_argument("--workflow", default=None, help="only runs of this workflow")
    lister.add_argument("--status", default=None, help="only runs with this status")
    lister.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lister.set_defaults(func=_list)
    show = sub.add_parser("show", help="one run: its summary, tree and child runs")
    show.add_argument("location", help="SQLite database, file-sink folder or http(s) URL")
    show.add_argument("run_id")
    show.add_argument("--logs", action="store_true", help="show each node's log lines too")
    show.set_defaults(func=_show)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _seconds(value: float | None) -> str:
    return f"{value:.3f}s" if value is not None else "-"


def _list(args: argparse.Namespace) -> int:
    from workflow_traces.store.local import open_store

    try:
        with open_store(args.location) as store:
            runs = store.list_runs(workflow=args.workflow, status=args.status, limit=args.limit)
    except TraceError as exc:
        print(f"workflow-traces runs list: {exc}", file=sys.stderr)
        return 2
    if not runs:
        print("no runs")
        return 0
    rows = [("STARTED (UTC)", "STATUS", "DURATION", "RECORDS", "WORKFLOW", "RUN_ID")]
    for s in runs:
        rows.append(
            (
                _when(s.started),
                s.status or "-",
                _seconds(s.duration),
                str(s.record_count),
                s.workflow_name or "-",
                s.run_id,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[-1] = 0  # no padding after the last column
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


def _show(args: argparse.Namespace) -> int:
    from workflow_traces.store.local import open_store
    from workflow_traces.store.tree import render_tree

    try:
        with open_store(args.location) as store:
            run = store.get_run(args.run_id)
    except TraceError as exc:
        print(f"workflow-traces runs show: {exc}", file=sys.stderr)
        return 2
    print(f"run_id:    {run.run_id}")
    print(f"workflow:  {run.workflow_name or '-'}")
    if run.parent_run_id:
        print(f"parent:    {run.parent_run_id}")
    print(f"status:    {run.status or '-'}")
    print(f"started:   {_when(run.started)}")
    print(f"ended:     {_when(run.ended)}")
    print(f"duration:  {_seconds(run.duration)}")
    print(f"records:   {run.record_count}")
    print()
    print(render_tree(run.tree, logs=args.logs))
    if run.child_runs:
        print()
        print("child runs:")
        for child in run.child_runs:
            print(
                f"  {child.run_id}  {child.workflow_name or '-'}  {child.status or '-'}  "
                f"{_seconds(child.duration)}"
            )
    return 0
