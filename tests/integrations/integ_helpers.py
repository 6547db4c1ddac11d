"""Helpers shared by the integration tests."""

from __future__ import annotations

from workflow_traces import Node


def shape(node: Node) -> list[tuple[int, str, str, str | None, int]]:
    """The tree as (depth, kind, name, status, attempt) rows, for comparing."""
    rows: list[tuple[int, str, str, str | None, int]] = []

    def walk(n: Node, depth: int) -> None:
        rows.append((depth, n.kind, n.name, n.status, n.attempt))
        for child in n.children:
            walk(child, depth + 1)

    walk(node, 0)
    return rows
