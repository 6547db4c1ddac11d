"""Sources for the ship tests: real SQLite databases and file-sink folders written by the
sinks themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow_traces import get_trace, open_store


def write_runs(kind: str, path: Path, runs: int = 3, per_run: int = 200, **names: Any) -> None:
    """``runs`` runs of ``per_run`` log lines each, between workflow start and end events,
    written by the ``kind`` sink ("sqlite" or "file") at ``path``; run i is ``run-i`` of
    workflow ``wf{i % 2}``."""
    for i in range(runs):
        trace = get_trace(
            f"run-{i}", extras={"trace_type": kind, "path": str(path), "buffer_size": 500}
        )
        trace.event("workflow", "started", name=names.get("workflow", f"wf{i % 2}"))
        for j in range(per_run):
            trace.info(f"line {i}/{j}")
        trace.event("workflow", "succeeded", name=names.get("workflow", f"wf{i % 2}"))
        trace.close()


def ids_in(location: Path, run_ids: list[str] | None = None) -> list[str]:
    """Every record id in a local store (repeats removed by the store), in run order."""
    with open_store(location) as store:
        runs = run_ids or [s.run_id for s in store.list_runs(limit=10**6)]
        return [r.record_id for run in runs for r in store.get_run(run).records]
