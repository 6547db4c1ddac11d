"""``make demo`` installs what the demo uses and nothing more: the core package (no extras, no
dev tools), and the demo runs on that alone.

The demo's own run is checked in a fresh process where the optional packages cannot be imported
(an import blocker on ``sys.meta_path``: they are installed in this venv, so they are made
missing for real in that process), and the set-up it gets from the Makefile is read with
``make -n``, which prints the commands without running them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("prefect", "httpx", "elasticsearch", "opensearchpy", "botocore", "boto3", "moto")

BLOCKER = f"""
import runpy, sys

class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
        return None

sys.meta_path.insert(0, _Missing())
sys.argv = ["demo.py"]
runpy.run_path({str(ROOT / "examples" / "demo.py")!r}, run_name="__main__")
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_the_core_package_only(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-n", "demo", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    installs = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert installs, done.stdout
    for line in installs:
        assert line.rstrip().endswith("pip install -qq --disable-pip-version-check -e ."), line
        assert "[" not in line and "tests/support" not in line and "custom_sink" not in line
    assert done.stdout.splitlines()[-1] == f"{venv}/bin/python examples/demo.py"


def test_the_demo_runs_without_any_optional_package(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "file and SQLite stores agree: True" in done.stdout
    assert "workflow-traces ui" in done.stdout  # it ends with the viewer's command
