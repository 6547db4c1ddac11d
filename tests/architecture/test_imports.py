"""No import cycles in the package (``workflow_traces/`` and ``integrations/``, installed as
``workflow_traces.integrations``) nor in the in-repo test servers (``tests/support``), counting
imports made inside functions and type-only ones. What counts as an edge is written in
``import_graph``'s docstring; the first tests below hold the checker itself to those rules on a
small package made for the purpose."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from import_graph import ImportGraph, find_cycles

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = {
    "workflow_traces": ROOT / "workflow_traces",
    "workflow_traces.integrations": ROOT / "integrations",
}


def _describe(graph: ImportGraph, cycle: list[str]) -> str:
    steps = [f"    {a} -> {b}  ({graph.where(a, b)})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def _assert_acyclic(graph: ImportGraph) -> None:
    cycles = find_cycles(graph.edges)
    assert not cycles, "import cycles:\n" + "\n".join(_describe(graph, c) for c in cycles)


def test_the_package_has_no_import_cycle() -> None:
    graph = ImportGraph.build(PACKAGE_ROOTS)
    assert "workflow_traces.pipeline.channel" in graph.files  # the roots were found
    assert "workflow_traces.integrations.dag" in graph.files
    _assert_acyclic(graph)


def test_the_test_servers_have_no_import_cycle() -> None:
    graph = ImportGraph.build({"local_services": ROOT / "tests" / "support" / "local_services"})
    assert "local_services.es_http" in graph.files
    _assert_acyclic(graph)


# -- the checker's own rules, on a package written for the test ----------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return {"pkg": root}


def test_imports_inside_functions_and_type_only_imports_are_edges(tmp_path: Path) -> None:
    roots = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.b import B
                """,
            "b.py": """
                def make():
                    from pkg import a
                    return a
                """,
        },
    )
    graph = ImportGraph.build(roots)
    assert graph.edges["pkg.a"] == {"pkg.b": 4}
    assert graph.edges["pkg.b"] == {"pkg.a": 3}
    assert find_cycles(graph.edges) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_relative_imports_resolve_against_the_package(tmp_path: Path) -> None:
    roots = _package(
        tmp_path,
        {
            "__init__.py": "",
            "top.py": "",
            "sub/__init__.py": "from .inner import thing\n",
            "sub/inner.py": "from ..top import x\nfrom . import other\nthing = 1\n",
            "sub/other.py": "from .. import top\n",
        },
    )
    graph = ImportGraph.build(roots)
    assert graph.edges["pkg.sub"] == {"pkg.sub.inner": 1}
    assert graph.edges["pkg.sub.inner"] == {"pkg.top": 1, "pkg.sub.other": 2}
    assert graph.edges["pkg.sub.other"] == {"pkg.top": 1}
    assert find_cycles(graph.edges) == []


def test_a_package_init_importing_its_submodules_is_no_cycle(tmp_path: Path) -> None:
    # pkg/__init__ imports pkg.core, which imports pkg.core.util and pkg.other: each of those
    # implicitly runs pkg/__init__ first, which is not an edge.
    roots = _package(
        tmp_path,
        {
            "__init__.py": "from pkg.core import api\n",
            "core/__init__.py": "",
            "core/api.py": "import pkg.core.util\nfrom pkg.other import name\n",
            "core/util.py": "",
            "other.py": "name = 1\n",
        },
    )
    graph = ImportGraph.build(roots)
    assert graph.edges["pkg"] == {"pkg.core.api": 1}
    assert graph.edges["pkg.core.api"] == {"pkg.core.util": 1, "pkg.other": 2}
    assert find_cycles(graph.edges) == []


def test_a_name_taken_from_the_package_init_is_a_cycle(tmp_path: Path) -> None:
    # pkg/__init__ imports pkg.a; pkg.a takes a plain name (not a submodule) from pkg/__init__.
    roots = _package(
        tmp_path,
        {
            "__init__.py": "from pkg.a import A\nVERSION = 1\n",
            "a.py": "from pkg import VERSION\nA = VERSION\n",
        },
    )
    graph = ImportGraph.build(roots)
    assert graph.edges["pkg.a"] == {"pkg": 1}
    assert find_cycles(graph.edges) == [["pkg", "pkg.a", "pkg"]]


def test_a_longer_cycle_is_printed_in_order(tmp_path: Path) -> None:
    roots = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "import pkg.b\n",
            "b.py": "from pkg.c import f\n",
            "c.py": "def f():\n    import pkg.a.thing\n",
            "d.py": "import pkg.a\n",  # outside the cycle
        },
    )
    graph = ImportGraph.build(roots)
    (cycle,) = find_cycles(graph.edges)
    assert cycle == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert _describe(graph, cycle).splitlines()[3].endswith("c.py:2)")
