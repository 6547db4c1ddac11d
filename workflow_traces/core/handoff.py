"""``context_env()``: the environment that hands the current run to a child process (see
``core.propagation`` for what the two variables hold and how a child joins)."""

from __future__ import annotations

import json
import os
from typing import Any

from workflow_traces.core.context import active_trace, current_scope
from workflow_traces.core.propagation import (
    CONTEXT_VAR,
    TRACEPARENT_VAR,
    format_traceparent,
    inherited,
)

__all__ = ["context_env"]

#: Extras keys that choose sinks (integrations.plain.SINK_KEYS), the ones handed on.
_SINK_KEYS = ("trace_type", "handlers", "path", "base_path", "db_path", "profile")
_SECRET_WORDS = ("key", "token", "password", "secret", "auth", "credential")


def _safe_sinks(extras: dict[str, Any]) -> dict[str, Any]:
    """The sink-choosing extras that can be written to the environment: JSON values, no keys
    that name a secret."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in value.items()
                if isinstance(k, str) and not any(w in k.lower() for w in _SECRET_WORDS)
            }
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError(type(value).__name__)

    out: dict[str, Any] = {}
    for key in _SINK_KEYS:
        if key in extras:
            try:
                out[key] = clean(extras[key])
            except TypeError:
                continue  # a value that cannot be written (a SecretStr, a handler object)
    return out


def context_env() -> dict[str, str]:
    """The variables that hand the current run to a child process: ``TRACEPARENT`` and
    ``WORKFLOW_TRACES_CONTEXT`` (see the module's notes), for ``subprocess``' ``env``::

        subprocess.run(cmd, env={**os.environ, **workflow_traces.context_env()})

    Inside a workflow, job or stage scope they name that scope; outside any, the run this
    process joined, if any. Empty when there is neither."""
    sc = current_scope()
    trace = active_trace()
    if sc.trace_id is not None and sc.span_id is not None:
        sinks = _safe_sinks(dict(getattr(trace, "extras", None) or {}))
        joined = inherited()
        if not sinks and joined is not None:
            sinks = joined.sinks
        data: dict[str, Any] = {
            "run_id": sc.run_id,
            "parent_run_id": sc.parent_run_id,
            "workflow_name": sc.workflow_name,
            "job_name": sc.job_name,
            "stage_name": sc.stage_name,
            "sinks": sinks,
        }
        return {
            TRACEPARENT_VAR: format_traceparent(sc.trace_id, sc.span_id),
            CONTEXT_VAR: json.dumps(data, separators=(",", ":")),
        }
    found = inherited()
    if found is None:
        return {}
    env = {}
    for name in (TRACEPARENT_VAR, CONTEXT_VAR):
        value = os.environ.get(name)
        if value:
            env[name] = value
    return env
