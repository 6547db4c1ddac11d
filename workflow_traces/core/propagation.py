"""Handing a run's trace context to other processes, and joining the run handed to this one.

Two environment variables carry it (the OpenTelemetry environment-carrier convention for the
first):

- ``TRACEPARENT``: the W3C traceparent of the scope that started the process
  (``00-<trace id>-<span id>-01``);
- ``WORKFLOW_TRACES_CONTEXT``: JSON with the run: ``run_id``, ``parent_run_id``, the workflow,
  job and stage names, and ``sinks``, the sink-choosing extras the parent's workflow was given
  (``trace_type``, ``path``, ``handlers``...; secrets are never written). A parent configured by
  TRACE_* alone hands on no ``sinks``: the child reads the same TRACE_* variables, which it
  inherits with the rest of the environment.

:func:`workflow_traces.context_env` (``core.handoff``) returns both for ``subprocess``' ``env``.
A process started with them joins the run: ``get_trace()`` returns a trace of the parent's run
id stamped with its names, and a span of its own, a child of the parent's scope; ``workflow()``
opens a nested workflow, a child run (``parent_run_id`` is the parent's run id) in the same
trace. This module reads those two variables and no others; it never reads TRACE_* settings
(``settings.sources`` does). It imports nothing of the package at its top, so ``core.context``
can ask it for a remote parent.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, NamedTuple

__all__ = [
    "CONTEXT_VAR",
    "TRACEPARENT_VAR",
    "Inherited",
    "format_traceparent",
    "inherited",
    "join_inherited",
    "parse_traceparent",
    "remote_parent",
]

TRACEPARENT_VAR = "TRACEPARENT"
CONTEXT_VAR = "WORKFLOW_TRACES_CONTEXT"

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


def parse_traceparent(text: str | None) -> tuple[str, str] | None:
    """(trace id, span id) of a W3C traceparent, or None when it is missing or invalid (the W3C
    rule: a bad header is ignored, and an all-zero id is invalid)."""
    if not text:
        return None
    m = _TRACEPARENT.match(text.strip().lower())
    if m is None or m.group(1) == "ff":
        return None
    if m.group(1) == "00" and m.group(5) is not None:
        return None  # version 00 has exactly four parts
    trace_id, span_id = m.group(2), m.group(3)
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def format_traceparent(trace_id: str, span_id: str) -> str:
    """The W3C traceparent of a span (version 00, sampled)."""
    return f"00-{trace_id}-{span_id}-01"


class Inherited(NamedTuple):
    """The run context this process was started with (see the module's notes)."""

    run_id: str | None
    parent_run_id: str | None
    workflow_name: str | None
    job_name: str | None
    stage_name: str | None
    trace_id: str | None
    span_id: str | None
    sinks: dict[str, Any]


_cache: tuple[tuple[str | None, str | None], Inherited | None] = ((None, None), None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def inherited() -> Inherited | None:
    """The run context in this process's environment, or None. Read again only when the two
    variables change (a test, or a process that sets them itself)."""
    global _cache
    raw = (os.environ.get(TRACEPARENT_VAR), os.environ.get(CONTEXT_VAR))
    key, value = _cache
    if key == raw:
        return value
    ids = parse_traceparent(raw[0])
    data: dict[str, Any] = {}
    if raw[1]:
        try:
            loaded = json.loads(raw[1])
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            data = loaded
    found = None
    if ids is not None or data.get("run_id"):
        sinks = data.get("sinks")
        found = Inherited(
            _text(data.get("run_id")),
            _text(data.get("parent_run_id")),
            _text(data.get("workflow_name")),
            _text(data.get("job_name")),
            _text(data.get("stage_name")),
            ids[0] if ids else None,
            ids[1] if ids else None,
            dict(sinks) if isinstance(sinks, dict) else {},
        )
    _cache = (raw, found)
    return found


#: Extras keys that choose sinks, and the name stamps, for a run joined from a parent process.
_SINK_KEYS = frozenset({"trace_type", "handlers", "path", "base_path", "db_path", "profile"})
_NAME_KEYS = ("workflow_name", "job_name", "stage_name")


def join_inherited(
    run_id: str | None,
    parent_run_id: str | None,
    extras: dict[str, Any] | None,
    scope_run_id: str | None,
) -> tuple[str | None, str | None, dict[str, Any]]:
    """``get_trace``'s arguments with the inherited run's filled in: extras that choose no sinks
    take the sinks it handed on; with no run id (here or in the active scope), its run id,
    parent run id and names."""
    extras = dict(extras or {})
    joined = inherited()
    if joined is None:
        return run_id, parent_run_id, extras
    if not _SINK_KEYS & extras.keys():
        extras = {**joined.sinks, **extras}
    if run_id is None and scope_run_id is None and joined.run_id is not None:
        run_id, parent_run_id = joined.run_id, parent_run_id or joined.parent_run_id
        for key, name in zip(_NAME_KEYS, joined[2:5], strict=True):
            if name is not None:
                extras.setdefault(key, name)
    return run_id, parent_run_id, extras


def remote_parent() -> tuple[str, str] | None:
    """(trace id, span id) a new root scope of this process becomes the child of: the active
    OpenTelemetry span, when opentelemetry-api is loaded and one is active, else the
    ``TRACEPARENT`` this process was started with."""
    if "opentelemetry.trace" in sys.modules:  # loaded by someone else: never imported here
        from workflow_traces.core.otel import current_otel_span

        active = current_otel_span()
        if active is not None:
            return active
    found = inherited()
    if found is not None and found.trace_id is not None and found.span_id is not None:
        return found.trace_id, found.span_id
    return None
