"""A sink whose optional package is not installed is a configuration error, not an outage: with
fail_silently=False get_trace raises a ConfigError naming the extra to install; with
fail_silently=True the sink is left out with one ERROR report; ``config check`` prints FAIL and
exits 1.

The package is made missing for real, in a fresh process: an import blocker on sys.meta_path
refuses it (and its submodules), as a machine without it would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCKER = """
import sys

class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} or name.startswith({module!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
for loaded in [m for m in sys.modules if m == {module!r} or m.startswith({module!r} + ".")]:
    del sys.modules[loaded]
"""

GET_TRACE = """
import json, logging
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(levelname)s %(message)s")
from workflow_traces import ConfigError, get_trace
try:
    trace = get_trace("r1", extras={{"fail_silently": {silent}, "handlers": {handlers}}})
except ConfigError as exc:
    print("CONFIG ERROR:", exc)
else:
    print("HANDLERS:", json.dumps(trace.handler_types))
    trace.close(timeout=1)
"""

CHECK = """
from workflow_traces.cli.main import main
sys.exit(main(["config", "check", "--timeout", "0.5"]))
"""

CASES = [
    (
        "httpx",
        {"type": "restapi", "api_url": "http://127.0.0.1:9/logs"},
        "pip install 'workflow-traces[rest]'",
    ),
    (
        "elasticsearch",
        {"type": "elasticsearch", "es_hosts": "http://127.0.0.1:9"},
        "pip install 'workflow-traces[elasticsearch]'",
    ),
    (
        "botocore",
        {"type": "restapi", "service_type": "cloudwatch", "region": "eu-west-1"},
        "pip install 'workflow-traces[cloudwatch]'",
    ),
]


def _run(cwd: Path, module: str, code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER.format(module=module) + code],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize(("module", "handler", "install"), CASES)
def test_a_missing_package_is_a_config_error_naming_the_extra(
    tmp_path: Path, module: str, handler: dict[str, str], install: str
) -> None:
    code = GET_TRACE.format(silent=False, handlers=[handler])
    out = _run(tmp_path, module, code)
    assert "CONFIG ERROR: handlers[0].type: " in out, out
    assert f"need the {module} package, which is not installed: {install}" in out


@pytest.mark.parametrize(("module", "handler", "install"), CASES)
def test_with_fail_silently_the_sink_is_left_out_with_one_error(
    tmp_path: Path, module: str, handler: dict[str, str], install: str
) -> None:
    handlers = [{"type": "file", "path": str(tmp_path / "logs")}, handler]
    out = _run(tmp_path, module, GET_TRACE.format(silent=True, handlers=handlers))
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, out
    assert "left out handler 1" in errors[0] and install in errors[0]
    assert 'HANDLERS: ["WorkflowFileHandler"]' in out


@pytest.mark.parametrize(("module", "handler", "install"), CASES)
def test_config_check_fails_and_exits_1(
    tmp_path: Path, module: str, handler: dict[str, str], install: str
) -> None:
    env = {"TRACE_HANDLERS": json.dumps([handler])}
    out = _run(tmp_path, module, CHECK, env)
    assert out.startswith("exit 1\n"), out
    assert "FAIL handlers[0] " in out and install in out
    assert "0 of 1 sink(s) ok" in out


def test_with_the_package_installed_nothing_is_missing(tmp_path: Path) -> None:
    # The same script with the blocker aimed at a module no sink needs: the sinks are built.
    handlers = [case[1] for case in CASES]
    out = _run(tmp_path, "no_such_module_x", GET_TRACE.format(silent=True, handlers=handlers))
    assert "ERROR" not in out, out
    assert 'HANDLERS: ["RestAPIHandler", "ElasticsearchHandler", "RestAPIHandler"]' in out, out
