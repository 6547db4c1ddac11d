"""Every script in examples/ runs to exit 0 in a fresh folder, and the records it says it
wrote (its ``wrote: LOCATION`` lines) are there: each location opens as a store holding runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workflow_traces import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Examples that start local HTTP stand-ins on 127.0.0.1 (REST receiver, Elasticsearch).
NETWORK = {"advanced.py", "dynamic_handlers.py", "fail_silently.py", "environments.py"}


#: Run by tests/prefect/test_prefect_example.py against the session's Prefect server, so that
#: ``make test`` starts one Prefect server, not two.
PREFECT = {"prefect_flow.py"}


def _params() -> list[object]:
    params: list[object] = []
    for script in sorted(EXAMPLES.glob("*.py")):
        if script.name in PREFECT:
            continue
        marks = [pytest.mark.network] if script.name in NETWORK else []
        params.append(pytest.param(script, id=script.stem, marks=marks))
    return params


def test_every_example_is_run_somewhere() -> None:
    runs_here = {Path(str(p.values[0])).name for p in _params()}  # type: ignore[attr-defined]
    assert runs_here | PREFECT == {p.name for p in EXAMPLES.glob("*.py")}
    assert (Path(__file__).parents[1] / "prefect" / "test_prefect_example.py").is_file()


@pytest.mark.parametrize("script", _params())
def test_example_runs_and_writes_where_it_says(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, output
    wrote = [
        line.split("wrote: ", 1)[1].strip()
        for line in proc.stdout.splitlines()
        if line.startswith("wrote: ")
    ]
    assert wrote, f"{script.name} must print 'wrote: LOCATION' for each store\n{output}"
    for location in wrote:
        path = tmp_path / location
        assert path.exists(), f"{script.name} says it wrote {location}, which is missing"
        with open_store(path) as store:
            runs = store.list_runs(limit=1000)
        assert runs, f"{location}: no runs"
        assert all(run.record_count > 0 for run in runs)
