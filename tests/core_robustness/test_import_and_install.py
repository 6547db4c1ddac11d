"""``import workflow_traces`` stays light, and both install modes expose the integrations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
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


def test_import_loads_only_the_standard_library_and_orjson(tmp_path: Path) -> None:
    """``import workflow_traces`` stays light (the developers' guide: under 100 ms, which
    ``make bench`` measures, as timings belong there): in a fresh interpreter it loads nothing
    but its own modules, orjson and the standard library."""
    proc = run_script(
        """
        import json, sys
        before = set(sys.modules)
        import workflow_traces
        print(json.dumps(sorted(set(sys.modules) - before)))
        """,
        tmp_path,
    )
    added = json.loads(proc.stdout)
    allowed = {"workflow_traces", "orjson", *sys.stdlib_module_names}
    assert [m for m in added if m.split(".")[0] not in allowed] == []
    assert "workflow_traces" in added


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


# -- the wheel ---------------------------------------------------------------------------------
#: Left out of the copy the wheel is built from: what a clean clone does not have.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "logs"
)
#: The subpackages the wheel must hold (pyproject's package list, written out again here on
#: purpose: a package dropped from that list must fail this test).
SUBPACKAGES = (
    "cli",
    "core",
    "exporters",
    "exporters/elasticsearch",
    "exporters/rest",
    "exporters/sqlite",
    "integrations",
    "pipeline",
    "settings",
    "store",
    "testing",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a clean copy of the repository (no ``build/`` left over from an earlier
    build, whose stale files setuptools would pack), built once for this module's tests."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dist = tmp / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (built,) = dist.glob("workflow_traces-*.whl")
    return built


def _source_modules() -> set[str]:
    """Every module of the package as the wheel names it (integrations/ is installed as
    workflow_traces.integrations)."""
    names = {
        f"workflow_traces/{p.relative_to(REPO / 'workflow_traces')}"
        for p in (REPO / "workflow_traces").rglob("*.py")
    }
    names |= {
        f"workflow_traces/integrations/{p.relative_to(REPO / 'integrations')}"
        for p in (REPO / "integrations").rglob("*.py")
    }
    return names


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_no_test_servers(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        python = {n for n in names if n.endswith(".py")}
        texts = {n: zf.read(n).decode("utf-8") for n in python}
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in zf.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    # Exactly the package's modules: none missing, none extra (a test server, a stale file).
    assert python == _source_modules()
    for sub in SUBPACKAGES:
        assert f"workflow_traces/{sub}/__init__.py" in names, sub
    assert "workflow_traces/py.typed" in names
    # No imitation Elasticsearch, no test receiver, nothing of local_services, by name or by
    # content; and not their TLS dependency.
    assert not [
        n for n in names if "local_services" in n or n.startswith(("tests/", "integrations/"))
    ]
    servers = ("class LocalElasticsearch", "class LocalReceiver", "local_services")
    assert not [n for n, text in texts.items() if any(s in text for s in servers)]
    assert not [r for r in requires if "cryptography" in r], requires
    assert any(r.startswith("Requires-Dist: orjson") for r in requires), requires


@pytest.mark.slow
def test_wheel_install_exposes_the_integrations(wheel: Path, tmp_path: Path) -> None:
    """Install the wheel into a fresh venv (core dependencies from the package index, the
    wheel itself with --no-deps) and import the integrations from it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
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
