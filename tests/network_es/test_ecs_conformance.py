"""Our Elasticsearch documents against ``ecs-logging``'s own StdlibFormatter (Elastic's published
ECS formatter for the stdlib, software we did not write): the same LogRecord goes through both,
and every field both write must hold the same value. And documents written before the ECS event
layout still read back through the store."""

from __future__ import annotations

import copy
import logging
from datetime import datetime
from typing import Any

import ecs_logging
import orjson
import pytest
from local_services import LocalElasticsearch

from workflow_traces.core.record import Record, new_record_id
from workflow_traces.core.stdlib import from_log_record
from workflow_traces.exporters.elasticsearch.documents import record_from_doc
from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
from workflow_traces.exporters.elasticsearch.schema import ECS_VERSION, MAPPINGS, record_to_doc
from workflow_traces.store.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.network


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c.d": 2}`` as ``{"a.b": 1, "c.d": 2}``: ECS names either way."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(_flat(item, name + "."))
        else:
            out[name] = item
    return out


def _both(call: Any, level: int = logging.DEBUG) -> tuple[dict[str, Any], dict[str, Any]]:
    """The flattened ecs-logging document and ours for the one LogRecord ``call`` makes."""
    keep = _Keep()
    logger = logging.getLogger("tests.ecs.conformance")
    logger.propagate = False
    logger.setLevel(level)
    logger.addHandler(keep)
    try:
        call(logger)
    finally:
        logger.removeHandler(keep)
    (lr,) = keep.records
    theirs = orjson.loads(ecs_logging.StdlibFormatter().format(lr))
    rec = from_log_record(lr, "run-ecs", None, (None, None, None), None)
    ours = orjson.loads(orjson.dumps(record_to_doc(rec)))
    return _flat(theirs), _flat(ours)


def _ms(stamp: str) -> datetime:
    """An RFC 3339 time to the millisecond (ecs-logging writes milliseconds, we nanoseconds)."""
    day, _, rest = stamp.rstrip("Z").partition("T")
    clock, _, frac = rest.partition(".")
    return datetime.fromisoformat(f"{day}T{clock}.{(frac + '000')[:3]}+00:00")


#: Fields both write whose values differ on purpose, and why.
_DIFFERENT = {
    "@timestamp",  # the same instant: they write milliseconds, we nanoseconds (compared below)
    "ecs.version",  # ecs-logging 2.x still writes 1.6.0; we write a current ECS version
    "error.stack_trace",  # they write the frames only; we the whole traceback (compared below)
}


def _compare(theirs: dict[str, Any], ours: dict[str, Any]) -> set[str]:
    common = set(theirs) & set(ours)
    for name in sorted(common - _DIFFERENT):
        assert ours[name] == theirs[name], name
    assert _ms(ours["@timestamp"]) == _ms(theirs["@timestamp"])
    assert theirs["ecs.version"] == "1.6.0" and ours["ecs.version"] == ECS_VERSION
    return common


def test_a_log_line_matches_ecs_logging_field_by_field() -> None:
    theirs, ours = _both(lambda log: log.warning("disk at %d%%", 91, extra={"run_id": "run-ecs"}))
    common = _compare(theirs, ours)
    # The fields this issue names are among those compared.
    assert {
        "log.level",
        "log.logger",
        "log.origin.file.name",
        "log.origin.file.line",
        "log.origin.function",
        "process.name",
        "process.pid",
        "process.thread.id",
        "process.thread.name",
        "message",
        "run_id",
    } <= common
    assert ours["log.level"] == "warning"
    assert ours["log.origin.file.name"] == "test_ecs_conformance.py"
    assert ours["log.origin.file.path"] == __file__  # the full path, which ECS has no field for


def test_an_exception_matches_ecs_logging_field_by_field() -> None:
    def call(log: logging.Logger) -> None:
        try:
            raise KeyError("row 7")
        except KeyError:
            log.exception("row failed")

    theirs, ours = _both(call)
    common = _compare(theirs, ours)
    assert {"error.type", "error.message", "log.level"} <= common
    assert ours["log.level"] == "error"
    # Their stack trace is the frames; ours is the whole traceback, which holds them.
    assert theirs["error.stack_trace"] in ours["error.stack_trace"]
    assert ours["error.stack_trace"].startswith("Traceback (most recent call last):")


def test_a_custom_level_matches_ecs_logging() -> None:
    logging.addLevelName(25, "NOTICE")
    try:
        theirs, ours = _both(lambda log: log.log(25, "custom"))
    finally:
        logging._levelToName.pop(25, None)
        logging._nameToLevel.pop("NOTICE", None)
    _compare(theirs, ours)
    assert ours["log.level"] == "notice"


def _old_doc(rec: Record, **fields: Any) -> dict[str, Any]:
    """A document as the sink wrote it before the ECS event layout."""
    doc = orjson.loads(orjson.dumps(record_to_doc(rec)))
    doc.pop("event", None)
    doc["log"]["level"] = rec.level
    doc["log"]["origin"] = {
        "file": {"name": rec.filename, "line": rec.lineno},
        "function": rec.func_name,
    }
    doc["process"] = {"pid": rec.process, "thread": {"id": rec.thread}}
    doc["ecs"] = {"version": "8.11.0"}
    doc.update(fields)
    return doc


def _rec(run_id: str, t: int, **kw: Any) -> Record:
    base: dict[str, Any] = {
        "time_ns": t,
        "level": "INFO",
        "levelno": 20,
        "message": f"at {t}",
        "run_id": run_id,
        "parent_run_id": None,
        "workflow_name": "etl",
        "job_name": None,
        "stage_name": None,
        "filename": "/srv/app/flows/etl.py",
        "lineno": 12,
        "func_name": "load",
        "process": 7,
        "thread": 9,
        "host": "h",
        "record_id": new_record_id(),
    }
    base.update(kw)
    return Record(**base)


def test_the_store_reads_documents_written_before_and_after_the_ecs_layout() -> None:
    t = 1_700_000_000_000_000_000
    old = [
        _rec("old-run", t, kind="event", scope="workflow", event="started", status="running"),
        _rec("old-run", t + 1, level="Level 25", levelno=25),
        _rec(
            "old-run",
            t + 2,
            kind="event",
            scope="workflow",
            event="failed",
            status="failed",
            duration=2.5,
            level="ERROR",
            levelno=40,
        ),
    ]
    new = [
        _rec("new-run", t + 3, kind="event", scope="workflow", event="started", status="running"),
        _rec("new-run", t + 4, parent_run_id="old-run"),
        _rec(
            "new-run",
            t + 5,
            kind="event",
            scope="workflow",
            event="succeeded",
            status="succeeded",
            duration=1.25,
        ),
    ]
    with LocalElasticsearch() as server:
        from elasticsearch import Elasticsearch

        client = Elasticsearch(server.url)
        # The index an earlier version made: its mapping has the top-level event text.
        earlier = copy.deepcopy(MAPPINGS)
        del earlier["properties"]["event"]
        earlier["properties"]["event"] = {"type": "keyword"}
        earlier["properties"]["duration"] = {"type": "double"}
        client.indices.create(index="before", mappings=earlier)
        operations: list[Any] = []
        for rec in old:
            fields: dict[str, Any] = {}
            if rec.event is not None:
                fields["event"] = rec.event
            if rec.duration is not None:
                fields["duration"] = rec.duration
            operations += [{"index": {"_id": rec.record_id}}, _old_doc(rec, **fields)]
        assert not client.bulk(operations=operations, index="before")["errors"]
        client.close()
        # The sink writes the new layout into an index of its own making.
        handler = ElasticsearchHandler("new-run", es_hosts=server.url, index_name="after")
        for rec in new:
            handler.channel.offer(rec)
        handler.close()
        assert handler.health().written == len(new)
        server.refresh("before")
        server.refresh("after")
        for index, run_id, written, status, duration in (
            ("before", "old-run", old, "failed", 2.5),
            ("after", "new-run", new, "succeeded", 1.25),
        ):
            store = ElasticsearchStore.from_url(f"{server.url}/{index}")
            try:
                (summary,) = store.list_runs()
                assert (summary.run_id, summary.status, summary.duration) == (
                    run_id,
                    status,
                    duration,
                )
                assert store.get_run(run_id).records == [r._replace(size=256) for r in written]
            finally:
                store.close()
        # A sink pointed at the earlier index says so, rather than lose every event document.
        stale = ElasticsearchHandler("new-run", es_hosts=server.url, index_name="before")
        for rec in new:
            stale.channel.offer(rec)
        stale.close()
        assert (stale.health().written, stale.health().failed) == (0, len(new))
        assert "earlier" in str(stale.health().last_error)
    # Both layouts, one record each way, straight through record_from_doc.
    assert record_from_doc(_old_doc(old[2], event="failed", duration=2.5)) == old[2]._replace(
        size=256
    )
