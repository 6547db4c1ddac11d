"""``workflow-traces ui [LOCATION] [--port N] [--host H]``: the local web viewer.

It binds 127.0.0.1 unless ``--host`` names another address, and then warns that the logs become
visible to that network. It prints the URL once it listens, and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workflow_traces.errors import TraceError

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="serve the web viewer: runs, a run's timeline and its logs",
        description="Serve the local web viewer over a store (default: the TRACE_* settings').",
    )
    parser.add_argument(
        "location",
        nargs="?",
        help="SQLite database, file-sink folder or http(s) URL (default: the TRACE_* settings')",
    )
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.set_defaults(func=_ui)


def _ui(args: argparse.Namespace) -> int:
    from workflow_traces.cli.runs import open_location
    from workflow_traces.text import escape_terminal
    from workflow_traces.viewer.server import ViewerServer, is_loopback_host, serve

    if not 0 <= args.port <= 65535:
        print(f"workflow-traces ui: port: expected 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        store = open_location(args.location)
    except TraceError as exc:
        print(f"workflow-traces ui: {exc}", file=sys.stderr)
        return 2
    if not is_loopback_host(args.host):
        print(
            f"workflow-traces ui: warning: serving on {args.host}: the logs become visible to "
            "every machine that can reach this address on that network",
            file=sys.stderr,
        )

    def ready(server: ViewerServer) -> None:
        where = escape_terminal(str(store), newlines=False)
        print(f"workflow-traces viewer: {server.url}  ({where}; Ctrl-C to stop)", flush=True)

    try:
        serve(store, args.host, args.port, ready)
    except OSError as exc:
        print(
            f"workflow-traces ui: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        store.close()
    return 0
