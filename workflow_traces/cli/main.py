"""The ``workflow-traces`` command. Each subcommand lives in its own module and registers here.

Output piped into a command that stops reading (``| head``) ends quietly, and Ctrl-C exits 130
without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    "ui": "workflow_traces.cli.ui",
}


def _version() -> str:
    from workflow_traces import __version__

    return f"workflow-traces {__version__}"


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null, so the interpreter's final flush does
    not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workflow-traces", description="Trace workflow runs.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
