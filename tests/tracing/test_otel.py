"""Interop with OpenTelemetry (opentelemetry-api, a dev dependency): a workflow started inside
an active OpenTelemetry span joins its trace as its child; inside our scopes
``get_current_span()`` is our scope's span; without opentelemetry loaded, nothing of it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from trace_helpers import spans
from workflow_traces.integrations.plain import job, stage, workflow

from workflow_traces import open_store

OUTER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
OUTER_SPAN = 0x00F067AA0BA902B7


def _outer() -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(OUTER_TRACE, OUTER_SPAN, is_remote=True, trace_flags=TraceFlags(1))
    )


def test_a_workflow_joins_the_active_otel_span_and_otel_sees_our_spans(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    seen = {}
    with trace.use_span(_outer()):
        with workflow("w", run_id="otel-run", trace_type="sqlite", path=str(db)):
            with job("j"), stage("s") as st:
                ctx = trace.get_current_span().get_span_context()
                seen["stage"] = (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
                assert seen["stage"] == (st.scope.trace_id, st.scope.span_id)
            ctx = trace.get_current_span().get_span_context()
            seen["after stage"] = format(ctx.span_id, "016x")
        # Our scopes left: the user's span is current again.
        assert trace.get_current_span().get_span_context().span_id == OUTER_SPAN
    run = open_store(db).get_run("otel-run")
    sp = spans(run.records)
    wf_span = sp[("workflow", "w")]
    assert wf_span.trace_id == format(OUTER_TRACE, "032x")
    assert wf_span.parent_span_id == format(OUTER_SPAN, "016x")
    assert sp[("stage", "s")].span_id == seen["stage"][1]
    assert seen["after stage"] == wf_span.span_id


def test_without_opentelemetry_loaded_nothing_of_it_loads(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from workflow_traces.integrations.plain import stage, workflow\n"
        f"with workflow('w', trace_type='sqlite', path={str(tmp_path / 't.db')!r}):\n"
        "    with stage('s') as st:\n"
        "        st.info('x')\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
