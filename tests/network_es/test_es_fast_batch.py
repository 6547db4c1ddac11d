"""The sink encodes a whole batch at once (``encode_actions``): each record's lines must be those
it gets on its own, and its document exactly ``record_to_doc``, whatever changes between the
records of one batch (contexts, extras objects, fields that leave the fast path)."""

from __future__ import annotations

import time

import orjson

from workflow_traces.core.record import Record
from workflow_traces.exporters.elasticsearch.schema import (
    encode_action,
    encode_actions,
    record_to_doc,
)
from workflow_traces.exporters.encode import dumps


def _batch() -> list[Record]:
    shared = {"team": "data", "n": 1.5}
    base = Record(
        time.time_ns(), "INFO", 20, "m", "run", None, "wf", None, None, "/a.py", 1, "f", 1, 2,
        "host", "id-0", logger="app",
    )  # fmt: skip
    out = []
    for i in range(600):
        out.append(
            base._replace(
                # crosses whole seconds, so the cached date text is replaced mid-batch
                time_ns=base.time_ns + i * 7_919_000,
                message=[f'line "{i}" \u00e9\n', f"plain {i}", "bad \udcff"][i % 3],
                record_id=f"id-{i}" if i % 50 else "odd \udcfe",
                job_name="job" if i % 3 else None,
                lineno=i % 5,
                extras=[None, shared, shared, {"fresh": [i]}][i % 4],
                exc_type="E" if i % 37 == 0 else None,
                kind="event" if i % 41 == 0 else "log",
                duration=1.5 if i % 43 == 0 else None,
            )
        )
    return out


def test_a_batch_encodes_as_its_records_one_by_one() -> None:
    batch = _batch()
    for op in ("index", "create"):
        lines = encode_actions(batch, op, "svc")
        assert [line.encode() for line in lines] == [encode_action(r, op, "svc") for r in batch]
        for rec, line in zip(batch, lines, strict=True):
            action, doc, end = line.encode().split(b"\n")
            assert end == b""
            assert orjson.loads(action) == {op: {"_id": orjson.loads(dumps(rec.record_id))}}
            assert orjson.loads(doc) == orjson.loads(dumps(record_to_doc(rec, "svc")))
