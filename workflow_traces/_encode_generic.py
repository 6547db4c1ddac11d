"""Generic REST encoder: our records as JSON objects, POSTed as one JSON array or as NDJSON.

Each object is ``record_to_dict``: every Record field under its own name, plus an ISO-8601 UTC
``timestamp``. ``record_id`` is unique per record, so a receiver can drop a copy sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._encode import dumps, record_to_dict
from ._record import Record
from ._rest_payload import Request, json_array, pack

__all__ = ["CONTENT_TYPES", "GENERIC_MAX_BYTES", "encode_generic"]

#: Largest request body the generic encoder builds (uncompressed).
GENERIC_MAX_BYTES = 5 * 1024 * 1024

CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson"}


def encode_generic(
    batch: Sequence[Record], fmt: str = "json", max_bytes: int = GENERIC_MAX_BYTES
) -> list[Request]:
    """Requests holding ``batch`` as a JSON array (``fmt="json"``) or NDJSON (``"ndjson"``)."""
    entries = ((rec, dumps(record_to_dict(rec))) for rec in batch)
    ndjson = fmt == "ndjson"
    groups = pack(entries, max_items=1 << 30, max_bytes=max_bytes, overhead=0 if ndjson else 2)
    if ndjson:
        return [Request(recs, b"\n".join(parts) + b"\n") for recs, parts in groups]
    return [Request(recs, json_array(parts)) for recs, parts in groups]
