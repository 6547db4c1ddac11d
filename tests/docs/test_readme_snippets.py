"""Every code snippet in the README runs as written when pasted into a fresh folder.

The README is cut into its ``## `` sections. Each section's snippets run in order in one new,
empty folder, with the TRACE_* variables of the test's own environment removed:

- a ``python`` block is written to a file and run with this interpreter (a block that defines
  ``test_*`` functions is run with pytest, as a user would run it); every function a block
  defines must be called in it (or be a test or a decorated entry point), so no snippet hides
  its work in a function nobody calls;
- a ``bash`` block's ``export NAME=...`` lines set the environment of the section's later blocks,
  and its ``workflow-traces ...`` lines run in the folder, with this venv's ``bin`` on PATH;
  lines that set up a machine (``make``, ``pip``, ``git``, ``cd``, the dev tools) are not run
  here: CI runs them, and ``tests/architecture`` builds and lists the wheel;
- blocks in other languages (``text``, ``sql``, output) are not code to run: a command's
  synopsis, with its ``[optional]`` parts, is ``text``.

The README's commands that name ``examples/`` files are run as from a clone: the folder holds a
copy of the repository's ``examples/``.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SETUP_COMMANDS = ("make", "pip", "git", "cd", ".venv/bin/", "python", "TRACE_TEST_")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


@dataclass
class Snippet:
    section: str
    lang: str
    code: str
    line: int


def snippets() -> list[Snippet]:
    text = README.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()]
        heads = re.findall(r"^## (.+)$", before, re.M)
        found.append(
            Snippet(heads[-1] if heads else "top", m.group(1), m.group(2), before.count("\n") + 1)
        )
    return found


def sections() -> dict[str, list[Snippet]]:
    out: dict[str, list[Snippet]] = {}
    for s in snippets():
        if s.lang in ("python", "bash"):
            out.setdefault(s.section, []).append(s)
    return out


def uncalled_functions(code: str) -> list[str]:
    """Functions a block defines at its top level and never calls or hands on (tests, which
    pytest calls, count as used)."""
    tree = ast.parse(code)
    defined = {
        n.name: n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.name.startswith("test_")
    }
    called = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return [name for name in defined if name not in called and name not in names]


def bash_commands(code: str) -> list[str]:
    """The block's lines, comments cut, continuation lines joined."""
    joined = code.replace("\\\n", " ")
    lines = []
    for raw in joined.splitlines():
        line = raw.split(" # ", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def run_section(section: list[Snippet], folder: Path) -> None:
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("logs"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["PREFECT_HOME"] = str(folder / ".prefect")  # Prefect's own files stay in the folder
    for n, s in enumerate(section):
        where = f"README.md line {s.line} ({s.section})"
        if s.lang == "python":
            assert not uncalled_functions(s.code), f"{where}: defines functions it never calls"
            path = folder / f"snippet_{n}.py"
            path.write_text(s.code, encoding="utf-8")
            test_style = re.search(r"^def test_", s.code, re.M)
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name]
            if not test_style:
                cmd = [sys.executable, path.name]
            done = subprocess.run(
                cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=240
            )
            assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, f"{where} printed a traceback:\n{done.stderr}"
            continue
        for line in bash_commands(s.code):
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                env[name] = shlex.split(value)[0] if value else ""
            elif line.startswith("workflow-traces"):
                done = subprocess.run(
                    line,
                    shell=True,
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 0, (
                    f"{where}: {line!r} failed:\n{done.stdout}{done.stderr}"
                )
            else:
                assert line.startswith(SETUP_COMMANDS), f"{where}: unexpected command {line!r}"


def _marks(name: str, section: list[Snippet]) -> list[pytest.MarkDecorator]:
    if any("prefect" in s.code for s in section if s.lang == "python"):
        return [pytest.mark.prefect]
    return []


SECTIONS = sections()


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=_marks(name, sec), id=name) for name, sec in SECTIONS.items()],
)
def test_readme_section_snippets_run(name: str, tmp_path: Path) -> None:
    run_section(SECTIONS[name], tmp_path)


def test_the_readme_has_python_snippets_to_run() -> None:
    assert sum(s.lang == "python" for s in snippets()) >= 8
