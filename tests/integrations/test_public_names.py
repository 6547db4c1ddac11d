"""The adapters (integrations/) use the core's public names only, and ``make typecheck`` checks
them: mypy strict runs over integrations/ too, with the adapters' own modules importing each
other relatively so that mypy follows their types (see pyproject's [tool.mypy])."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = sorted((ROOT / "integrations").glob("*.py"))
#: namedtuple's public API, which begins with an underscore.
NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_make"})


def _private_members(paths: list[Path]) -> set[str]:
    """Underscored attributes and methods defined in ``paths`` (``self._x = ...``, ``def _x``)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign | ast.Assign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_the_adapters_import_no_private_name_of_the_core() -> None:
    found = []
    for path in ADAPTERS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "workflow_traces"
            ):
                module_parts = (node.module or "").split(".")
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private or any(p.startswith("_") for p in module_parts):
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_the_adapters_touch_no_private_member_of_the_core() -> None:
    core = _private_members(sorted((ROOT / "workflow_traces").rglob("*.py")))
    own = _private_members(ADAPTERS)
    suspicious = core - own - NAMEDTUPLE_API
    assert {"_names", "_targets", "_wake_records", "_refused", "_record"} & core  # the check bites
    found = []
    for path in ADAPTERS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in suspicious:
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_typecheck_covers_the_adapters_and_their_imports_resolve() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert "integrations" in config["files"] and config["strict"] is True
    # An absolute import of a sibling (workflow_traces.integrations.x) is one mypy cannot
    # follow: its names would be Any and go unchecked.
    absolute = []
    for path in ADAPTERS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "workflow_traces.integrations"
            ):
                absolute.append(f"{path.name}:{node.lineno}")
    assert absolute == []
