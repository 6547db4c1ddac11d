"""``workflow-traces runs list|show|tail``: read runs back.

LOCATION is what ``open_store`` takes: a SQLite database, a file-sink folder or (with the
elasticsearch extra) an ``http(s)://`` URL. Without one, the store the TRACE_* settings
configure is read (see store/configured.py). Exit status: 0; 2 when the location, the run or
an argument cannot be used; 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

import orjson

from workflow_traces.errors import TraceError
from workflow_traces.store.base import STATUSES, Store, child_counts

__all__ = ["add_parser", "open_location"]

_LOCATION = "SQLite database, file-sink folder or http(s) URL (default: the TRACE_* settings')"


def open_location(location: str | None) -> Store:
    """The store at ``location``, or the one the TRACE_* settings configure."""
    if location is None:
        from workflow_traces.store.configured import configured_store

        return configured_store()
    from workflow_traces.store.local import open_store

    return open_store(location)


def _filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("log filters (imply --logs)")
    group.add_argument("--level", help="that level and above (DEBUG, INFO, WARNING, ERROR)")
    group.add_argument("--job", help="only this job's records")
    group.add_argument("--stage", help="only this stage's records")
    group.add_argument("--grep", metavar="TEXT", help="records whose message holds TEXT")
    group.add_argument("--since", metavar="WHEN", help="made in the last 10m / 2h / 1d, or ISO")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list traced runs, show one run as a tree with its logs, or follow it",
        description="Read runs back from a SQLite database, a file-sink folder or a URL.",
    )
    sub = parser.add_subparsers(dest="runs_command", required=True)
    lister = sub.add_parser("list", help="runs, newest first, child runs under their parents")
    lister.add_argument("location", nargs="?", help=_LOCATION)
    lister.add_argument("--workflow", default=None, help="only runs of this workflow")
    lister.add_argument("--status", default=None, choices=STATUSES, help="only this status")
    lister.add_argument("--roots", action="store_true", help="only runs without a parent")
    lister.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lister.add_argument("--json", action="store_true", help="one JSON document")
    lister.set_defaults(func=_list)

    show = sub.add_parser("show", help="one run: summary, tree (with child runs), logs")
    show.add_argument("location", nargs="?", help=_LOCATION)
    show.add_argument("run_id")
    show.add_argument("--logs", action="store_true", help="print the run's log lines too")
    _filters(show)
    show.add_argument("--json", action="store_true", help="one JSON document")
    show.add_argument("--ndjson", action="store_true", help="the log records, one JSON a line")
    show.add_argument(
        "--follow", "-f", action="store_true", help="print records as they land until the end"
    )
    show.set_defaults(func=_show)

    tail = sub.add_parser("tail", help="a run's last log lines; -f to follow it")
    tail.add_argument("location", nargs="?", help=_LOCATION)
    tail.add_argument("run_id")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="then follow until the end")
    _filters(tail)
    tail.add_argument("--ndjson", action="store_true", help="one JSON a record")
    tail.set_defaults(func=_tail)


def _fail(command: str, exc: BaseException) -> int:
    print(f"workflow-traces runs {command}: {exc}", file=sys.stderr)
    return 2


def _list(args: argparse.Namespace) -> int:
    from workflow_traces.cli.output import print_rows, run_rows, stdout, use_colour
    from workflow_traces.store.jsonable import summary_to_dict

    out = stdout()
    try:
        with open_location(args.location) as store:
            runs = store.list_runs(
                workflow=args.workflow, status=args.status, limit=args.limit, roots=args.roots
            )
            counts = child_counts(store.summaries()) if args.json else {}
    except TraceError as exc:
        return _fail("list", exc)
    if args.json:
        doc = {"runs": [summary_to_dict(s, counts.get(s.run_id, 0)) for s in runs]}
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not runs:
        out.write("no runs\n")
        return 0
    print_rows(run_rows(runs), out, use_colour(out))
    return 0


def _read_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "level": args.level,
        "job": args.job,
        "stage": args.stage,
        "text": args.grep,
        "since": args.since,
    }


def _follow(
    store: Store, args: argparse.Namespace, out: IO[str], colour: bool, last: int | None = None
) -> int:
    """Print the run's records as they land (lifecycle events too, but with --ndjson) until it
    ends; with ``last``, only the last that many of those written already."""
    from workflow_traces.cli.output import LogWriter

    writer = LogWriter(out, ndjson=args.ndjson, colour=colour)
    kind = "log" if args.ndjson else None
    skip = 0
    if last is not None:
        skip = sum(1 for _ in store.iter_records(args.run_id, kind=kind, **_read_filters(args)))
        skip = max(0, skip - last)
    for rec in store.follow(args.run_id, kind=kind, **_read_filters(args)):
        if skip:
            skip -= 1
            continue
        out.write(writer.line(rec))
        out.flush()
    return 0


def _show(args: argparse.Namespace) -> int:
    from workflow_traces.cli.output import LogWriter, stdout, use_colour
    from workflow_traces.store.jsonable import node_to_dict, record_to_json, summary_to_dict
    from workflow_traces.store.tree import paint, render_tree

    out = stdout()
    colour = use_colour(out)
    filters = _read_filters(args)
    logs = args.logs or args.ndjson or any(v is not None for v in filters.values())
    try:
        with open_location(args.location) as store:
            if args.follow:
                return _follow(store, args, out, colour)
            if args.ndjson:
                writer = LogWriter(out, ndjson=True)
                writer.write_all(store.iter_records(args.run_id, kind="log", **filters))
                return 0
            summary = store.get_summary(args.run_id)
            tree = store.run_tree(args.run_id)
            records = store.iter_records(args.run_id, kind="log", **filters) if logs else None
            if args.json:
                head = {"run": summary_to_dict(summary), "tree": node_to_dict(tree)}
                text = orjson.dumps(head).decode()
                if records is None:
                    out.write(text + "\n")
                    return 0
                out.write(text[:-1] + ', "logs": [')
                sep = "\n"
                for rec in records:
                    out.write(sep + orjson.dumps(record_to_json(rec), default=str).decode())
                    sep = ",\n"
                out.write("\n]}\n")
                return 0
            rows = [
                ("run_id", summary.run_id),
                ("workflow", summary.workflow_name or "-"),
                *([("parent", summary.parent_run_id)] if summary.parent_run_id else []),
                ("status", paint(summary.status or "-", summary.status, colour)),
                ("started", _when(summary.started)),
                ("ended", _when(summary.ended)),
                ("duration", f"{summary.duration:.3f}s" if summary.duration is not None else "-"),
                ("records", str(summary.record_count)),
            ]
            from workflow_traces.text import escape_terminal

            for key, value in rows:
                out.write(f"{key + ':':<10} {escape_terminal(value, newlines=False)}\n")
            out.write("\n" + render_tree(tree, colour=colour) + "\n")
            if records is not None:
                out.write("\nlogs:\n")
                LogWriter(out, colour=colour).write_all(records)
    except TraceError as exc:
        return _fail("show", exc)
    return 0


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _tail(args: argparse.Namespace) -> int:
    from workflow_traces.cli.output import LogWriter, stdout, use_colour

    out = stdout()
    colour = use_colour(out)
    filters = _read_filters(args)
    if args.lines < 0:
        return _fail("tail", ValueError(f"lines: expected a number >= 0, got {args.lines}"))
    try:
        with open_location(args.location) as store:
            if args.follow:
                return _follow(store, args, out, colour, last=args.lines)
            last = store.last_records(args.run_id, args.lines, kind="log", **filters)
            LogWriter(out, ndjson=args.ndjson, colour=colour).write_all(last)
    except TraceError as exc:
        return _fail("tail", exc)
    return 0
