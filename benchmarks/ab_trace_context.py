"""A/B in one process: the caller's cost of a log call with trace context (this branch) against
the same call without it (main's ``_log_call``, taken from git and run over the same module
globals). Both build and queue into the same kind of sink-less MultiHandler (build cost only)
and into one in-memory deque sink; runs alternate A, B, A, B... and the medians are printed.

    .venv/bin/python benchmarks/ab_trace_context.py [git-rev, default main]
"""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workflow_traces.core import trace as trace_mod
from workflow_traces.core.context import Scope, reset_scope, set_scope
from workflow_traces.core.trace import Trace
from workflow_traces.pipeline.multi import MultiHandler

ROOT = Path(__file__).resolve().parents[1]
N = 200_000
ROUNDS = 15


def _log_call_of(rev: str | None) -> object:
    """The INFO call built by ``_log_call`` as written at ``rev`` (None: the working tree), both
    compiled the same way over the same globals, so only the function's text differs."""
    if rev is None:
        source = (ROOT / "workflow_traces" / "core" / "trace.py").read_text()
    else:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:workflow_traces/core/trace.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_log_call")
    namespace = dict(vars(trace_mod))
    namespace["_LOG_CALLS"] = {}
    exec(compile(ast.Module([fn], []), "<main _log_call>", "exec"), namespace)
    return namespace["_log_call"](20)


def _time(call: object, trace: Trace) -> float:
    info = call
    t0 = time.perf_counter()
    for _ in range(N):
        info(trace, "message")  # type: ignore[operator]
    return (time.perf_counter() - t0) / N * 1e6


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "main"
    old = _log_call_of(rev)
    new = _log_call_of(None)
    for where in ("outside a scope", "inside a stage scope"):
        token = set_scope(Scope().child("wf", "j", "s", "r", None)) if "inside" in where else None
        a: list[float] = []
        b: list[float] = []
        trace = Trace("r", handler=MultiHandler("r"))
        for _ in range(ROUNDS):
            a.append(_time(old, trace))
            b.append(_time(new, trace))
        if token is not None:
            reset_scope(token)
        ma, mb = statistics.median(a), statistics.median(b)
        print(
            f"{where:22s} {rev}: {ma:.3f} us  this branch: {mb:.3f} us  "
            f"cost: {mb - ma:+.3f} us a call ({(mb / ma - 1) * 100:+.1f}%)"
        )


if __name__ == "__main__":
    main()
