"""Run by test_dag_command through a ``command`` stage: logs COUNT lines tagged LABEL, through
``get_trace()`` ("get_trace", first one line with the TRACEPARENT it was given) or inside a
workflow of its own ("workflow")."""

from __future__ import annotations

import os
import sys


def main(mode: str, count: int, label: str) -> None:
    from workflow_traces.integrations.plain import stage, workflow

    from workflow_traces import get_trace

    if mode == "get_trace":
        trace = get_trace()
        trace.info(f"handed {os.environ.get('TRACEPARENT', '')}")
        for i in range(count):
            trace.info(f"{label} {i}")
        trace.close()
    else:
        with workflow(f"{label}-wf"), stage("child-stage") as st:
            for i in range(count):
                st.info(f"{label} {i}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
