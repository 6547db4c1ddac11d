"""Zero working sinks is loud: when every configured sink is left out (fail_silently=True),
one ERROR report names each sink and its cause, ``health()`` lists each one as ``unavailable``
with its error, and every record logged to the trace is counted there as dropped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from workflow_traces import get_trace


def _unwritable(tmp_path: Path) -> Path:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "logs"  # cannot be created: its parent is a file


def test_every_sink_left_out_is_reported_once_and_listed_as_unavailable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _unwritable(tmp_path)
    handlers = [
        {"type": "file", "path": str(bad)},
        {"type": "sqlite", "path": str(bad / "t.db")},
    ]
    with caplog.at_level(logging.DEBUG, logger="workflow_traces"):
        trace = get_trace("nowhere", extras={"handlers": handlers})
        for i in range(7):
            trace.info(f"m{i}")
        trace.error("and an error")
        trace.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    text = errors[0].getMessage()
    assert "no sink of run 'nowhere' could be built, its records are dropped" in text
    assert "handler 0 (file): handlers[0].path: cannot create folder" in text
    assert "handler 1 (sqlite): handlers[1].path: cannot create folder" in text

    health = trace.health()
    assert len(health) == 2
    for name, h in health.items():
        assert h.state == "unavailable", name
        assert h.last_error is not None and "cannot create folder" in h.last_error
        assert (h.written, h.dropped, h.failed, h.queued) == (0, 8, 0, 0)


def test_with_one_sink_left_the_others_are_reported_each_and_not_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handlers = [
        {"type": "file", "path": str(_unwritable(tmp_path))},
        {"type": "sqlite", "path": str(tmp_path / "t.db")},
    ]
    with caplog.at_level(logging.DEBUG, logger="workflow_traces"):
        trace = get_trace("partly", extras={"handlers": handlers})
        trace.info("kept")
        trace.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "left out handler 0 (file)" in errors[0]
    (h,) = trace.health().values()
    assert (h.written, h.state) == (1, "closed")
