"""``workflow-traces ship SOURCE [--to JSON | --profile NAME]``: send the runs of a SQLite
database or a file-sink folder to any sink, exactly once per destination.

Exit status: 0 every selected record was delivered; 1 some records of the source could not be
read and were skipped (the others went); 2 nothing could be shipped (a bad argument, source or
destination); 3 a destination stopped taking records (ship again to resume).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from typing import Any

from workflow_traces.errors import TraceError

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ship",
        help="send the runs of a SQLite file or file-sink folder to any sink, exactly once",
        description=(
            "Send the runs in SOURCE (a SQLite database or a file-sink folder) to the sinks of "
            "the TRACE_* settings, of --profile, or to the one handler config --to gives. A "
            "checkpoint per source and destination means a second ship sends nothing new and "
            "an interrupted one resumes. Exit status: 0 all delivered, 1 unreadable records "
            "skipped, 2 could not ship, 3 a destination stopped taking records."
        ),
    )
    parser.add_argument("source", help="a SQLite database file or a file-sink folder")
    parser.add_argument(
        "--to",
        default=None,
        metavar="JSON",
        help='one handler config, like an entry of TRACE_HANDLERS: \'{"type": "sqlite", '
        '"path": "copy.db"}\' (default: the sinks of the TRACE_* settings)',
    )
    parser.add_argument("--profile", default=None, help="take the sinks of this settings profile")
    parser.add_argument(
        "--run", action="append", default=[], metavar="RUN_ID", help="only this run (repeatable)"
    )
    parser.add_argument("--workflow", default=None, help="only runs of this workflow")
    parser.add_argument(
        "--since",
        default=None,
        help="only runs that started at or after this: an age (7d, 12h) or an ISO date",
    )
    parser.add_argument("--rate", type=float, default=None, help="at most this many records/s")
    parser.add_argument(
        "--batch", type=int, default=None, help="records per delivered batch (default 5000)"
    )
    parser.add_argument(
        "--state",
        default=None,
        help="the checkpoint file (default: SOURCE.ship.json, or SOURCE/.ship.json)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.set_defaults(func=_ship)


def _ship(args: argparse.Namespace) -> int:
    from workflow_traces.shipping.shipper import DEFAULT_BATCH, ship
    from workflow_traces.text import escape_terminal

    try:
        results = ship(
            args.source,
            args.to,
            profile=args.profile,
            runs=args.run,
            workflow=args.workflow,
            since=args.since,
            rate=args.rate,
            batch_size=args.batch or DEFAULT_BATCH,
            state=args.state,
            progress=args.progress,
        )
    except (TraceError, OSError, sqlite3.Error) as exc:  # OSError: the source went away
        from workflow_traces.cli.output import command_failed

        return command_failed("ship", exc)
    code = 0
    for result in results:
        print(escape_terminal(result.summary()))
        if result.problems:
            code = max(code, 1)
            shown = result.problems[:20]
            for problem in shown:
                print(
                    f"workflow-traces ship: skipped {escape_terminal(str(problem))}",
                    file=sys.stderr,
                )
            if len(result.problems) > len(shown):
                more = len(result.problems) - len(shown)
                print(f"workflow-traces ship: ... and {more} more", file=sys.stderr)
        if result.error:
            print(f"workflow-traces ship: {escape_terminal(result.error)}", file=sys.stderr)
            code = 3
    return code
