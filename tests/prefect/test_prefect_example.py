"""examples/prefect_flow.py runs as a script and writes what it says, read back from both stores.

It runs in a fresh interpreter pointed at this session's Prefect server (PREFECT_API_URL), so it
does not start a server of its own; run by hand, it starts Prefect's temporary local one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prefect_helpers import PREFECT_WARNING_FILTERS, read_both, shape

from workflow_traces import open_store

pytestmark = [pytest.mark.prefect, *map(pytest.mark.filterwarnings, PREFECT_WARNING_FILTERS)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefect_flow.py"


def test_example_runs_and_traces_its_flows(prefect_server: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env["PREFECT_API_URL"] = prefect_server
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, output
    assert "wrote: logs/prefect_traces.db" in proc.stdout, output
    assert "stage extract (attempt 2)  succeeded" in proc.stdout, output

    db, files = tmp_path / "logs" / "prefect_traces.db", tmp_path / "logs" / "prefect"
    with open_store(db) as store:
        runs = store.list_runs()
    (root,) = [r for r in runs if r.parent_run_id is None]
    (child,) = [r for r in runs if r.parent_run_id == root.run_id]
    assert (root.workflow_name, root.status) == ("etl", "succeeded")
    assert child.workflow_name == "etl"

    run = read_both(db, files, root.run_id)
    assert shape(run, "stage", "extract") == [
        ("stage", "started", "extract"),
        ("stage", "failed", "extract"),
        ("stage", "started", "extract"),
        ("stage", "succeeded", "extract"),
    ]
    assert Counter(shape(run, "stage", "transform")) == {
        ("stage", "started", "transform"): 4,
        ("stage", "succeeded", "transform"): 4,
    }
    sub = read_both(db, files, child.run_id)
    assert shape(sub) == [("job", "started", "publish"), ("job", "succeeded", "publish")]
    assert [r.message for r in sub.logs if r.message.startswith("publishing")] == [
        "publishing 4 rows"
    ]
