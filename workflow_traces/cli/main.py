"""The ``workflow-traces`` command. Each subcommand lives in its own module and registers here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: Subcommand name -> module that defines ``add_parser(subparsers)``; each parser sets ``func``.
SUBCOMMANDS = {
    "config": "workflow_traces.cli.config",
    "run": "workflow_traces.cli.run",
    "prune": "workflow_traces.cli.prune",
    "runs": "workflow_traces.cli.runs",
    "ship": "workflow_traces.cli.ship",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workflow-traces", description="Trace workflow runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.add_parser(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
