"""The fault knobs of :class:`~local_services.elasticsearch.LocalElasticsearch`, as
a mixin: :attr:`delay` before each answer, :meth:`fail_items` (the next N bulk items answer a
status), :meth:`fail_requests` (whole requests answer a status, with ``Retry-After``),
:meth:`lose_responses` (apply a bulk, then drop the connection) and :meth:`clear_faults`; and
the two lookups the request path makes to take the next fault due. The state lives on the
server object (set in its ``__init__``); this class only declares it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from local_services.es_http import HTTPError

__all__ = ["FAULT_TYPES", "FaultsMixin"]

FAULT_TYPES = {
    400: "document_parsing_exception",
    401: "security_exception",
    403: "security_exception",
    404: "index_not_found_exception",
    409: "version_conflict_engine_exception",
    413: "request_entity_too_large",
    429: "es_rejected_execution_exception",
    500: "internal_server_error",
    503: "unavailable_shards_exception",
}


class FaultsMixin:
    """Fault knobs (state set by ``LocalElasticsearch.__init__``)."""

    _lock: threading.RLock
    _item_faults: deque[list[Any]]
    _request_faults: deque[list[Any]]
    _lose: int
    _delay: float
    _delay_cut: threading.Event

    @property
    def delay(self) -> float:
        """Seconds to wait before answering each request. Setting it to 0 also ends the
        waits in progress."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay = max(0.0, float(seconds))
        if not self._delay:
            self._delay_cut.set()
            self._delay_cut = threading.Event()

    def pending_delay(self) -> tuple[float, threading.Event]:
        """The delay to wait before answering a request, and the event that lifting it sets
        (read first: the setter sets the event it replaces, so a wait cut short ends)."""
        cut = self._delay_cut
        return self._delay, cut

    # -- fault knobs ---------------------------------------------------------------------------
    def fail_items(self, count: int, status: int = 429, reason: str | None = None) -> None:
        """Answer the next ``count`` bulk items with ``status`` (nothing is written for them)."""
        with self._lock:
            self._item_faults.append([count, status, reason])

    def fail_requests(
        self,
        count: int,
        status: int = 503,
        *,
        retry_after: float | None = None,
        path: str = "_bulk",
        reason: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests whose path contains ``path`` with ``status``."""
        with self._lock:
            self._request_faults.append([count, status, retry_after, path, reason])

    def lose_responses(self, count: int) -> None:
        """Apply the next ``count`` bulk requests, then close the connection without answering
        (as when a response is lost on the way): the client sees a connection error."""
        with self._lock:
            self._lose += count

    def clear_faults(self) -> None:
        with self._lock:
            self._item_faults.clear()
            self._request_faults.clear()
            self._lose = 0
            self.delay = 0.0

    def _request_fault(self, path: str) -> HTTPError | None:
        with self._lock:
            for fault in self._request_faults:
                count, status, retry_after, where, reason = fault
                if where in path:
                    fault[0] = count - 1
                    if fault[0] <= 0:
                        self._request_faults.remove(fault)
                    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
                    kind = FAULT_TYPES.get(status, "exception")
                    return HTTPError(status, kind, reason or f"simulated {status}", headers)
        return None

    def _item_fault(self) -> tuple[int, str] | None:
        faults = self._item_faults
        while faults:
            fault = faults[0]
            if fault[0] <= 0:
                faults.popleft()
                continue
            fault[0] -= 1
            status = fault[1]
            return status, fault[2] or f"simulated {status}"
        return None
