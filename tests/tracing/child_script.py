"""Run in a child process by test_across_processes: logs COUNT lines tagged LABEL, through
``get_trace()`` ("get_trace") or inside a workflow of its own ("workflow"). With a third
argument, a JSON env dict, it first takes that run context (the multiprocessing case)."""

from __future__ import annotations

import json
import os
import sys


def main(mode: str, count: int, label: str) -> None:
    from workflow_traces.integrations.plain import stage, workflow

    from workflow_traces import get_trace

    if mode == "get_trace":
        trace = get_trace()
        for i in range(count):
            trace.info(f"{label} {i}")
        trace.close()
    else:
        with workflow(f"{label}-wf"), stage("child-stage") as st:
            for i in range(count):
                st.info(f"{label} {i}")


def spawned(env: dict[str, str], mode: str, count: int, label: str) -> None:
    """The multiprocessing target: take the run context handed over, then log."""
    os.environ.update(env)
    main(mode, count, label)


if __name__ == "__main__":
    if len(sys.argv) > 4:
        os.environ.update(json.loads(sys.argv[4]))
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
