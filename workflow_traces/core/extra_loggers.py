"""``TRACE_EXTRA_LOGGERS``: route other stdlib loggers' records into the traced scope they are
emitted in.

Users' own libraries log through stdlib loggers. A logger named in ``TRACE_EXTRA_LOGGERS``
(comma-separated) gets one handler of ours, :data:`ROUTER`, installed when sinks are first built
(``get_trace``, a workflow, a Prefect run). A record it sees inside a workflow, job or stage
scope (plain, DAG or Prefect: the scope's trace is active) goes to that scope's sinks, stamped
with the scope's names and trace and span ids, the way ``MultiHandler`` builds records. A record
emitted outside every scope is left alone (the logger's other handlers still get it). Our own
and the HTTP clients' loggers are never routed: a sink's client must not log into itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from workflow_traces.core.context import _ACTIVE
from workflow_traces.core.stdlib import log_record_values
from workflow_traces.errors import TraceClosedError
from workflow_traces.pipeline.fanout import offer_all

__all__ = ["EXCLUDED", "ROUTER", "ScopeRouter", "parse_logger_names", "route_extra_loggers"]

#: Loggers never routed (and their children).
EXCLUDED = (
    "workflow_traces",
    "httpx",
    "httpcore",
    "urllib3",
    "elastic_transport",
    "elasticsearch",
    "botocore",
    "boto3",
)


class ScopeRouter(logging.Handler):
    """Sends a record to the sinks of the scope active where it is emitted; outside every
    scope, does nothing.

    The active trace is always a ``ScopedTrace`` (the adapters set it), read straight from the
    context variable. ``handle`` takes no handler lock: the sinks' buffers are safe to append
    to from any thread, as ``MultiHandler.handle``'s are (the lock cost a routed call about a
    tenth of its time)."""

    def handle(self, record: logging.LogRecord) -> bool:
        trace = _ACTIVE.get()
        if trace is None or record.levelno < trace.level:
            return False
        if self.filters and not self.filter(record):
            return False
        try:
            extras = trace.record_extras
            if extras is None:
                extras = trace._record_extras
            rec = log_record_values(record, trace.run_id, trace.parent_run_id, trace._names, extras)
            offer_all(trace.handler.targets, rec, record.levelno)
        except TraceClosedError:
            return False  # the scope's sinks closed: the record is the logger's other handlers'
        except Exception:
            self.handleError(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


ROUTER = ScopeRouter()
_lock = threading.Lock()
_routed: set[str] = set()


def parse_logger_names(text: str | None) -> list[str]:
    """The logger names of a comma-separated list, blanks dropped, each once."""
    names = (part.strip() for part in (text or "").split(","))
    return list(dict.fromkeys(n for n in names if n))


def _excluded(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in EXCLUDED)


def route_extra_loggers(names: Iterable[str]) -> list[str]:
    """Install :data:`ROUTER` on each named logger (once); returns the names routed now.
    Excluded names (ours, the HTTP clients') are skipped."""
    added = []
    with _lock:
        for name in names:
            if name in _routed or _excluded(name) or name == "root":
                continue
            logging.getLogger(name).addHandler(ROUTER)
            _routed.add(name)
            added.append(name)
    return added
