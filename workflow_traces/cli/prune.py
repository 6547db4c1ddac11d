"""``workflow-traces prune LOCATION --older-than 30d``: remove whole runs that ended before the
cutoff, with their child runs, from a SQLite database or a file-sink folder.

Exit status: 0 done (or nothing to remove), 2 a bad argument or location.
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Any

from workflow_traces.errors import TraceError

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="remove runs that ended before a cutoff from a SQLite file or file-sink folder",
        description=(
            "Remove whole runs in LOCATION (a SQLite database or a file-sink folder) that ended "
            "more than --older-than ago: their records and events, their child runs and their "
            "run folders. Unfinished runs stay unless --include-unfinished. Prints what it "
            "removed (or, with --dry-run, would remove) and the space freed."
        ),
    )
    parser.add_argument("location", help="a SQLite database file or a file-sink folder")
    parser.add_argument("--older-than", required=True, help="an age: 30d, 12h, 90m, 45s or 2w")
    parser.add_argument("--keep-failed", action="store_true", help="keep failed runs")
    parser.add_argument(
        "--dry-run", action="store_true", help="remove nothing; print what would go"
    )
    parser.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also remove unfinished runs that started before the cutoff",
    )
    parser.set_defaults(func=_prune)


def _prune(args: argparse.Namespace) -> int:
    from workflow_traces.pruning.prune import prune
    from workflow_traces.text import escape_terminal

    try:
        result = prune(
            args.location,
            args.older_than,
            keep_failed=args.keep_failed,
            dry_run=args.dry_run,
            include_unfinished=args.include_unfinished,
        )
    except (TraceError, OSError, sqlite3.Error) as exc:  # OSError: the source went away
        from workflow_traces.cli.output import command_failed

        return command_failed("prune", exc)
    for line in result.lines():
        print(escape_terminal(line))
    return 0
