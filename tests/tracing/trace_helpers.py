"""Helpers for the trace-context tests."""

from __future__ import annotations

import re
from collections.abc import Iterable

from workflow_traces import Record

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def spans(records: Iterable[Record]) -> dict[tuple[str, str | None], Record]:
    """The started event of each scope, by (scope, name)."""
    out = {}
    for rec in records:
        if rec.kind == "event" and rec.event == "started":
            name = {"workflow": rec.workflow_name, "job": rec.job_name}.get(
                rec.scope or "", rec.stage_name
            )
            out[(rec.scope or "", name)] = rec
    return out


def assert_w3c(rec: Record) -> None:
    assert rec.trace_id is not None and TRACE_ID.match(rec.trace_id), rec
    assert rec.span_id is not None and SPAN_ID.match(rec.span_id), rec
