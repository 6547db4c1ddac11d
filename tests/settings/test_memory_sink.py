"""The in-memory sink that ``workflow_traces.testing`` ships for users' own tests: a real sink
(its own buffer and worker), configured like any other type or built in code, whose records are
read back, counted by id."""

from __future__ import annotations

import json
import logging

import pytest

from workflow_traces import ConfigError, MultiHandler, get_trace
from workflow_traces.testing import (
    MemoryHandler,
    MemoryRecords,
    capture_traces,
    memory_sink,
)


@pytest.fixture
def sink() -> MemoryRecords:
    records = memory_sink("tests")
    records.clear()
    return records


def test_the_memory_type_from_trace_handlers_keeps_every_record(
    sink: MemoryRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_HANDLERS", json.dumps([{"type": "memory", "name": "tests"}]))
    with capture_traces() as captured:
        trace = get_trace("r1", extras={"workflow_name": "wf"})
        for i in range(500):
            trace.info(f"m{i}")
        trace.event("workflow", "succeeded")
        trace.close()
    assert sink.record_ids == [r.record_id for r in captured]
    assert sink.messages == [f"m{i}" for i in range(500)]
    assert [e.event for e in sink.events] == ["succeeded"]
    assert {r.workflow_name for r in sink.for_run("r1")} == {"wf"}
    assert trace.health()["memory:tests"].written == 501


def test_handlers_of_one_name_share_their_records(sink: MemoryRecords) -> None:
    first = get_trace("a", extras={"handlers": [{"type": "memory", "name": "tests"}]})
    second = get_trace("b", extras={"handlers": [{"type": "memory", "name": "tests"}]})
    first.info("from a")
    second.info("from b")
    first.close()
    second.close()
    assert sorted(sink.messages) == ["from a", "from b"]
    assert [r.message for r in sink.for_run("b")] == ["from b"]


def test_a_memory_handler_in_code_takes_stdlib_records(sink: MemoryRecords) -> None:
    handler = MemoryHandler("r1", name="tests", level=logging.INFO)
    multi = MultiHandler("r1", handlers=[handler])
    logger = logging.getLogger("tests.memory_sink")
    logger.addHandler(multi)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("below the sink's level")
        logger.warning("kept %d", 3)
        multi.flush()
        assert handler.records is sink
        assert sink.messages == ["kept 3"]
    finally:
        logger.removeHandler(multi)
        multi.close()


def test_the_memory_type_is_validated_like_the_others() -> None:
    with pytest.raises(ConfigError, match=r"handlers\[0\]\.name: "):
        get_trace("r1", extras={"handlers": [{"type": "memory", "name": ""}]})
    with pytest.raises(ConfigError, match=r"did you mean 'name'\?"):
        get_trace("r1", extras={"handlers": [{"type": "memory", "nmae": "x"}]})
