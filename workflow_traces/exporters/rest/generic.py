"""Generic REST encoder: our records as JSON objects, POSTed as one JSON array or as NDJSON.

Each object is ``record_to_dict``: every Record field under its own name, plus an ISO-8601 UTC
``timestamp``. ``record_id`` is unique per record, so a receiver can drop a copy sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow_traces.core.record import F_MESSAGE, F_RECORD_ID, F_TIME_NS, Record
from workflow_traces.exporters.encode import dumps, iso_utc, record_to_dict
from workflow_traces.exporters.rest.payload import (
    Contexts,
    Request,
    hole,
    json_text,
    pack_text,
    template,
)

__all__ = ["CONTENT_TYPES", "GENERIC_MAX_BYTES", "encode_generic"]

#: Largest request body the generic encoder builds (uncompressed).
GENERIC_MAX_BYTES = 5 * 1024 * 1024

CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson"}


def _template(rec: Record) -> tuple[str, ...] | None:
    """The object of ``rec``'s context with holes for timestamp, time_ns, message, record_id."""
    d = record_to_dict(rec._replace(message=hole(2), record_id=hole(3)))
    d["timestamp"] = hole(0)
    d["time_ns"] = hole(1)
    return template(d, 4)


_contexts = Contexts(_template)


def encode_generic(
    batch: Sequence[Record], fmt: str = "json", max_bytes: int = GENERIC_MAX_BYTES
) -> list[Request]:
    """Requests holding ``batch`` as a JSON array (``fmt="json"``) or NDJSON (``"ndjson"``)."""
    get = _contexts.get
    texts: list[str] = []
    for rec in batch:
        p = get(rec)
        if p is not None:
            time_ns = rec[F_TIME_NS]
            text = (
                f'{p[0]}"{iso_utc(time_ns)}"{p[1]}{time_ns}{p[2]}{json_text(rec[F_MESSAGE])}{p[3]}'
                f"{json_text(rec[F_RECORD_ID])}{p[4]}"
            )
        else:
            text = dumps(record_to_dict(rec)).decode()
        texts.append(text)
    ndjson = fmt == "ndjson"
    groups = pack_text(
        batch, texts, max_items=1 << 30, max_bytes=max_bytes, overhead=0 if ndjson else 2
    )
    if ndjson:
        return [Request(list(recs), ("\n".join(parts) + "\n").encode()) for recs, parts in groups]
    return [Request(list(recs), f"[{','.join(parts)}]".encode()) for recs, parts in groups]
