"""``import workflow_traces`` stays light, and both install modes expose the integrations."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from robust_helpers import REPO, run_script

HEAVY = ("pydantic", "pydantic_settings", "httpx", "elasticsearch", "prefect", "botocore")


def test_import_does_not_load_heavy_dependencies(tmp_path: Path) -> None:
    proc = run_script(
        f"""
        import json, sys
        import workflow_traces
        from workflow_traces import MultiHandler, SQLiteHandler, WorkflowFileHandler, open_store
        heavy = {HEAVY!r}
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
        """,
        tmp_path,
    )
    assert json.loads(proc.stdout) == []


def test_handlers_built_in_code_do_not_load_pydantic(tmp_path: Path) -> None:
    """Only validating configuration needs pydantic; handlers made in code do not."""
    proc = run_script(
        """
        import json, sys
        from workflow_traces import MultiHandler, SQLiteHandler, WorkflowFileHandler, Trace
        multi = MultiHandler("light", handlers=[
            WorkflowFileHandler("light", base_path="files"),
            SQLiteHandler("light", db_path="t.db"),
        ])
        Trace("light", handler=multi).info("hello")
        multi.close()
        print(json.dumps("pydantic" in sys.modules))
        """,
        tmp_path,
    )
    assert json.loads(proc.stdout) is False


def test_import_takes_under_150_ms(tmp_path: Path) -> None:
    """A stated requirement of the issue, measured in fresh interpreters: the import alone, not
    the interpreter's start. This machine is shared by busy test runs, so wall-clock time is
    noisy: the CPU time of the import (median of seven) and the best wall time must both stay
    under 150 ms."""
    code = """
        import time
        wall, cpu = time.perf_counter(), time.process_time()
        import workflow_traces
        print(time.perf_counter() - wall, time.process_time() - cpu)
    """
    run_script(code, tmp_path)  # warm the bytecode cache
    runs = [tuple(map(float, run_script(code, tmp_path).stdout.split())) for _ in range(7)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    assert statistics.median(cpus) < 0.150, runs
    assert min(walls) < 0.150, runs


def test_editable_install_exposes_the_integrations(tmp_path: Path) -> None:
    """The project's own venv holds the editable install; import from outside the repo, with
    no PYTHONPATH, so only the install can resolve it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import workflow_traces.integrations as i, workflow_traces as w; "
            "print(i.__file__); print(w.__file__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    integrations, package = proc.stdout.split()
    assert Path(integrations).resolve() == (REPO / "integrations" / "__init__.py").resolve()
    assert Path(package).resolve() == (REPO / "workflow_traces" / "__init__.py").resolve()


@pytest.mark.slow
def test_wheel_install_exposes_the_integrations(tmp_path: Path) -> None:
    """Build a wheel, install it into a fresh venv (core dependencies from the package index,
    the wheel itself with --no-deps) and import the integrations from it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(dist)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("workflow_traces-*.whl")

    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "workflow_traces/integrations/__init__.py" in names
    assert "workflow_traces/py.typed" in names
    assert not any(n.startswith(("tests/", "integrations/")) for n in names)

    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)  # a fresh, empty venv ...
    python = target / "bin" / "python"
    # ... that this interpreter's pip installs into (saves bootstrapping pip in it)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    pip.append("--disable-pip-version-check")
    deps = subprocess.run(
        [*pip, "pydantic>=2.6,<3", "pydantic-settings>=2.2,<3", "orjson>=3.9,<4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert deps.returncode == 0, deps.stderr
    inst = subprocess.run(
        [*pip, "--no-deps", str(wheel)], capture_output=True, text=True, env=env, timeout=120
    )
    assert inst.returncode == 0, inst.stderr
    proc = subprocess.run(
        [
            str(python),
            "-c",
            "import workflow_traces.integrations as i, workflow_traces as w; "
            "from workflow_traces import get_trace, open_store; "
            "t = get_trace('wheel', extras={'trace_type': 'sqlite', 'path': 't.db'}); "
            "t.info('from the wheel'); t.close(); "
            "print(i.__file__); print(open_store('t.db').get_run('wheel').records[0].message)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    integrations, message = proc.stdout.strip().split("\n")
    assert Path(integrations).is_relative_to(target)
    assert message == "from the wheel"
