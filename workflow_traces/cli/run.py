"""``workflow-traces run FILE [--param KEY=VALUE ...]``: run a DAG workflow file, print its tree.

Exit status: 0 when the run succeeded, 1 when it failed, 2 when it could not start (a bad file,
a missing param, bad sink settings).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workflow_traces.errors import TraceError

__all__ = ["add_parser", "check_param_names", "parse_params"]


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs: a VALUE that reads as JSON (``3``, ``true``, ``[1, 2]``) is taken as
    such, anything else as a string. Raises ValueError naming a pair without ``=``."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param: expected KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def check_param_names(workflow: Any, params: dict[str, Any]) -> None:
    """Refuse a --param the workflow does not take (a typo would otherwise be ignored), naming
    the ones it takes."""
    takes = workflow.param_names()
    unknown = sorted(params.keys() - takes) if takes is not None else []
    if unknown:
        names = ", ".join(sorted(takes)) if takes else "none"
        raise ValueError(
            f"--param: workflow {workflow.name!r} takes no param "
            f"{', '.join(repr(n) for n in unknown)}; it takes: {names}"
        )


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a DAG workflow file (YAML or TOML) and print its run tree",
        description=(
            "Run the DAG workflow defined in FILE (.yaml/.yml/.toml; stages name functions as "
            "'pkg.mod:func', found next to FILE or installed) and print its run tree. Exit "
            "status: 0 succeeded, 1 failed, 2 could not start."
        ),
    )
    parser.add_argument("file", help="workflow definition (.yaml, .yml or .toml)")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a run param (repeatable); VALUE is read as JSON if it can be, else as text",
    )
    parser.add_argument("--run-id", default=None, help="run id to use (default: generated)")
    parser.add_argument("--logs", action="store_true", help="show each node's log lines too")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import importlib

    # integrations/ installs as workflow_traces.integrations (a package-dir mapping mypy does
    # not follow), so load it by name.
    dag = importlib.import_module("workflow_traces.integrations.dag")
    try:
        params = parse_params(args.param)
        workflow = dag.load_workflow(args.file)
        check_param_names(workflow, params)
        result = workflow.run(params, run_id=args.run_id)
    except (TraceError, ValueError) as exc:
        print(f"workflow-traces run: {exc}", file=sys.stderr)
        return 2
    print(render_run(result.run_id, result.locations, logs=args.logs, fallback=result))
    return 0 if result.ok else 1


def render_run(run_id: str, locations: list[str], *, logs: bool, fallback: Any = None) -> str:
    """The run tree read back from the first local store the run was traced to, and where its
    records are. Without a local store, a summary from ``fallback`` (a WorkflowResult)."""
    from workflow_traces.store.local import open_store
    from workflow_traces.store.tree import render_tree

    lines: list[str] = []
    tree = None
    for location in locations:
        try:
            with open_store(location) as store:
                tree = store.get_run(run_id).tree
            break
        except TraceError:
            continue
    if tree is not None:
        lines.append(render_tree(tree, logs=logs))
    elif fallback is not None:
        lines.append(f"workflow {fallback.name}  {fallback.status}  {fallback.duration:.3f}s")
        for job in fallback.jobs.values():
            lines.append(f"  job {job.name}  {job.status}  {job.duration:.3f}s")
            for st in job.stages.values():
                lines.append(f"    stage {st.name}  {st.status}  attempts={st.attempts}")
    lines.append("")
    lines.append(f"run_id: {run_id}")
    for location in locations:
        lines.append(f"records: {location}")
    if locations:
        lines.append(f"see it again: workflow-traces runs show {locations[0]} {run_id}")
    return "\n".join(lines)
