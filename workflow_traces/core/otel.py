"""Interop with OpenTelemetry, used only when ``opentelemetry-api`` is already imported (by the
user's instrumentation, or a library such as Prefect): nothing here imports it otherwise, so
without it nothing of it loads.

- A workflow started inside an active OpenTelemetry span joins that span's trace as its child
  (``core.propagation.remote_parent`` asks :func:`current_otel_span`).
- Inside our workflow, job and stage scopes, ``opentelemetry.trace.get_current_span()`` is our
  scope's span (a non-recording span with our ids, :func:`enter_span`), so the user's own
  OpenTelemetry instrumentation (httpx, SQLAlchemy) nests its spans under the right stage.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["current_otel_span", "enter_span", "exit_span"]

_MODULE = "opentelemetry.trace"


def current_otel_span() -> tuple[str, str] | None:
    """(trace id, span id) in W3C hex of the active OpenTelemetry span, or None when none is
    active (or opentelemetry-api is not loaded)."""
    if _MODULE not in sys.modules:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def enter_span(trace_id: str | None, span_id: str | None) -> Any:
    """Make our span the current OpenTelemetry span; returns the token :func:`exit_span` takes
    (None when opentelemetry-api is not loaded or the scope has no span)."""
    if _MODULE not in sys.modules or trace_id is None or span_id is None:
        return None
    from opentelemetry import context, trace

    span = trace.NonRecordingSpan(
        trace.SpanContext(
            int(trace_id, 16),
            int(span_id, 16),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    return context.attach(trace.set_span_in_context(span))


def exit_span(token: Any) -> None:
    """Restore the OpenTelemetry context :func:`enter_span` replaced."""
    if token is None:
        return
    from opentelemetry import context

    context.detach(token)
