"""``PartialDeliveries``: which requests already carried the records a REST exporter hands
back for retry, so that the retry sends each record only where it has not arrived.

A record can ride in more than one request of one batch: with OTLP ``signals: ["logs",
"traces"]`` a scope's end event is a log record (``/v1/logs``) and a span (``/v1/traces``,
requests of ``key`` "traces"). When the second request fails after the first went through, the
record is handed back for retry (the pipeline retries records, not requests); this remembers,
by record id, the keys that carried it, and the retry's requests of those keys leave it out.
Each signal is retried on its own: what arrived is not sent again.

Only the worker thread of one sink uses an instance. It holds nothing for a batch that went
through whole, and at most :data:`MAX_PARTIAL` records: past that the oldest are forgotten (a
record the pipeline gave up on costs nothing); forgetting one that is still retried would send
its delivered part again (a duplicate), never lose it. The memory is this process's: records
read back from a spool after a restart are sent whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from workflow_traces.core.record import Record

if TYPE_CHECKING:
    from workflow_traces.exporters.rest.payload import Request

__all__ = ["MAX_PARTIAL", "Keys", "PartialDeliveries"]

MAX_PARTIAL = 1 << 16

#: The keys of the requests that carried a record (None: a request without a key).
Keys = frozenset[str | None]
_NONE: Keys = frozenset()


class PartialDeliveries:
    """The request keys that already carried records handed back for retry, by record id."""

    def __init__(self) -> None:
        self._done: dict[str, Keys] = {}

    def __len__(self) -> int:
        return len(self._done)

    def take(self, batch: Sequence[Record]) -> dict[str, Keys]:
        """What is remembered of ``batch``'s records, forgotten here: the attempt that is about
        to send them settles them, or hands them back again (:meth:`hand_back`)."""
        done = self._done
        if not done:
            return {}
        taken = {}
        for rec in batch:
            keys = done.pop(rec.record_id, None)
            if keys is not None:
                taken[rec.record_id] = keys
        return taken

    @staticmethod
    def encode(
        encode: Callable[[Sequence[Record]], list[Request]],
        batch: Sequence[Record],
        prior: dict[str, Keys],
    ) -> list[Request]:
        """``encode(batch)``, leaving each record out of the requests whose key already
        carried it (``prior``, from :meth:`take`)."""
        if not prior:
            return encode(batch)
        groups: dict[Keys, list[Record]] = {}
        for rec in batch:
            groups.setdefault(prior.get(rec.record_id, _NONE), []).append(rec)
        requests: list[Request] = []
        for done, recs in groups.items():
            requests.extend(req for req in encode(recs) if req.key not in done)
        return requests

    def hand_back(
        self, requests: list[Request], failed: int, prior: dict[str, Keys]
    ) -> list[Record]:
        """The records to retry when ``requests[failed]`` failed: those of it and of the
        requests after it, each once. Remembers for each the keys that carried it: ``prior``
        and the requests before ``failed`` (sent, or refused for good: sending those again
        cannot help either)."""
        rest = {id(rec): rec for req in requests[failed:] for rec in req.records}
        carried: dict[int, set[str | None]] = {}
        for req in requests[:failed]:
            for rec in req.records:
                if id(rec) in rest:
                    carried.setdefault(id(rec), set()).add(req.key)
        done = self._done
        for key, rec in rest.items():
            keys = prior.get(rec.record_id, _NONE) | carried.get(key, _NONE)
            if keys:
                done[rec.record_id] = keys
        while len(done) > MAX_PARTIAL:
            del done[next(iter(done))]
        return list(rest.values())
