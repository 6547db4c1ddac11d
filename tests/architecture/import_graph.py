"""The import graph of the installed package, built from its source with ``ast``.

What counts as an edge ``A -> B`` (module A imports module B):

- every ``import`` and ``from ... import`` statement anywhere in A: at module level, inside
  functions and methods (they run later, but they run), inside ``try`` blocks, and under
  ``if TYPE_CHECKING:`` too. A type-only import never runs, so it cannot fail at import time,
  but it still means "A cannot be read, or checked, without B": two modules that name each
  other's types are one design split over two files, which is what this test is about (the
  architecture issue's count of five cycles counts them: ``Channel``/``Delivery`` met that
  way). To use a type without the cycle, name a Protocol in the module that needs it (or in
  a third module both import), not the concrete class;

How a name resolves:

- Relative imports resolve against A's package (``from .x import y`` in ``pkg/a.py`` is
  ``pkg.x``); ``pkg/__init__.py`` is the module ``pkg`` itself.
- ``from pkg import name``: when ``pkg.name`` is a module of the package, the edge goes to that
  submodule. Otherwise ``name`` is defined by (or re-exported from) ``pkg/__init__.py``, and the
  edge goes to ``pkg``: a submodule that takes a plain name from its own package's
  ``__init__`` while that ``__init__`` imports the submodule is a real cycle (whichever is
  imported first sees the other half-made).
- Importing ``pkg.sub.mod`` also runs ``pkg/__init__`` and ``pkg/sub/__init__`` first; those
  implicit parent imports are NOT edges. Python finishes running a package's ``__init__``
  before it hands out its submodules to anyone else, so a package ``__init__`` importing its
  own submodules (as ``workflow_traces/__init__.py`` does) is the normal layout, not a cycle.
- Only modules inside the graph's roots are nodes; the standard library and third-party
  packages are left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ImportGraph", "find_cycles", "module_files"]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module under ``root``, by the dotted name it has once installed as ``package``."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


@dataclass
class ImportGraph:
    """Modules (dotted names) and the modules each one imports."""

    files: dict[str, Path]
    edges: dict[str, dict[str, int]] = field(default_factory=dict)  # target -> line number

    def __repr__(self) -> str:
        return f"ImportGraph({len(self.files)} modules)"

    @classmethod
    def build(cls, roots: dict[str, Path]) -> ImportGraph:
        """``roots`` maps an installed package name to its source folder."""
        files: dict[str, Path] = {}
        for package, root in roots.items():
            files.update(module_files(root, package))
        graph = cls(files)
        for name, path in files.items():
            graph.edges[name] = graph._imports_of(name, path)
        return graph

    def _package_of(self, module: str) -> str:
        path = self.files[module]
        return module if path.name == "__init__.py" else module.rpartition(".")[0]

    def _resolve(self, dotted: str) -> str | None:
        """``dotted`` if it is a node, or its nearest enclosing node (``pkg.mod.attr``)."""
        while dotted:
            if dotted in self.files:
                return dotted
            dotted = dotted.rpartition(".")[0]
        return None

    def _imports_of(self, module: str, path: Path) -> dict[str, int]:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found: dict[str, int] = {}

        def add(target: str | None, line: int) -> None:
            if target is not None and target != module:
                found[target] = min(found.get(target, line), line)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(self._resolve(alias.name), node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = self._package_of(module).split(".")
                    if node.level > 1:
                        base = base[: -(node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in self.files:
                        add(sub, node.lineno)  # from pkg import submodule
                    else:
                        add(self._resolve(source), node.lineno)  # a name from pkg/__init__
        return found

    def where(self, source: str, target: str) -> str:
        """``file:line`` of the import of ``target`` in ``source``, for messages."""
        return f"{self.files[source]}:{self.edges[source][target]}"


def find_cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan's algorithm), as
    one cycle through it each: ``[a, b, ..., a]``. Sorted, so the output is stable."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return sorted(_cycle_in(comp, edges) for comp in components)


def _cycle_in(component: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """One cycle through the first module of ``component`` (breadth-first, so a short one)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a component always has one
