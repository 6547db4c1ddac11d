"""Runs, trees and records as JSON-ready dicts: what ``runs ... --json``/``--ndjson`` print and
what the viewer's API serves, in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflow_traces.core.record import Record
from workflow_traces.exporters.encode import record_to_dict
from workflow_traces.store.base import RunSummary
from workflow_traces.store.tree import Node

__all__ = ["node_to_dict", "record_to_json", "summary_to_dict"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def summary_to_dict(s: RunSummary, children: int | None = None) -> dict[str, Any]:
    """A run's summary; ``children`` (a count) when known."""
    out: dict[str, Any] = {
        "run_id": s.run_id,
        "parent_run_id": s.parent_run_id,
        "workflow_name": s.workflow_name,
        "status": s.status,
        "started": _iso(s.started),
        "ended": _iso(s.ended),
        "duration": s.duration,
        "record_count": s.record_count,
    }
    if children is not None:
        out["child_count"] = children
    return out


def node_to_dict(node: Node, origin: datetime | None = None) -> dict[str, Any]:
    """A tree node and its children; ``offset`` is seconds from ``origin`` (the root's start
    when not given) to the node's start."""
    origin = node.started if origin is None else origin
    offset = (
        (node.started - origin).total_seconds()
        if node.started is not None and origin is not None
        else None
    )
    return {
        "name": node.name,
        "kind": node.kind,
        "status": node.status,
        "started": _iso(node.started),
        "ended": _iso(node.ended),
        "duration": node.duration,
        "offset": offset,
        "attempt": node.attempt,
        "error": node.error,
        "run_id": node.run_id,
        "children": [node_to_dict(c, origin) for c in node.children],
    }


def record_to_json(rec: Record) -> dict[str, Any]:
    """A record as a flat dict: ``timestamp`` (ISO UTC) and every field by name."""
    d = record_to_dict(rec)
    d.pop("size", None)
    return d
