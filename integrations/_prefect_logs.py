"""Prefect's run loggers into our sinks: one routing handler on ``prefect.flow_runs`` and
``prefect.task_runs``.

Everything logged through ``get_run_logger()`` and Prefect's own engine lines ("Beginning flow
run ...", "Finished in state ...") go through those two loggers, carrying Prefect's extras
(``flow_run_id``, ``flow_name``, ``task_run_id``, ``task_name``, ...). The handler stamps each
record from those extras and the run registry, not from the context: the engine logs some lines
outside the run's context (a flow's last line, a subflow's first).

Prefect configures logging with ``dictConfig`` when its API is first imported (``prefect.main``,
loaded by ``from prefect import flow``; a bare ``import prefect`` is lazy) and again whenever it
is asked to, which removes every handler attached to its loggers before. So the handler is
attached after that import, and ``attach_logging()`` runs again at the start of every traced
run: one membership test per logger when nothing changed.

A flow's first lines ("Beginning flow run ...") come before any of our code runs when the hooks
were not installed yet (``@flow`` over ``@traced``, first run): records of flow runs not known
yet are held briefly (at most 16 per run, for the last 64 runs) and written if that run turns
out to be traced.

Prefect logs two INFO lines around every state hook it calls ("Running hook ..." and
"Hook ... finished running successfully"). For our own hooks those lines are noise (four per
task run), so a filter on the two loggers drops them; errors raised in a hook are kept.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from workflow_traces.core.context import Scope, reset_scope, set_scope
from workflow_traces.core.stdlib import from_log_record
from workflow_traces.diagnostics import report
from workflow_traces.pipeline.multi import MultiHandler

__all__ = ["HOOK_PREFIX", "RUN_LOGGERS", "PrefectRunHandler", "attach_logging", "replay_pending"]

#: Prefect's loggers for flow runs and task runs (``get_run_logger`` and the engine).
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")

#: Our state hooks' ``__name__`` starts with this; Prefect names hooks by ``__name__``.
HOOK_PREFIX = "workflow_traces."

_NOISE = (f"Running hook '{HOOK_PREFIX}", f"Hook '{HOOK_PREFIX}")

_PENDING_RUNS = 64
_PENDING_RECORDS = 16

#: (scope to stamp, the sinks' MultiHandler, extras for the record) or None: not ours.
Route = tuple[Scope, MultiHandler, dict[str, Any] | None]
Resolver = Callable[[dict[str, Any]], Route | None]


class _HookNoise(logging.Filter):
    """Drops Prefect's "Running hook ..." / "Hook ... finished" lines about our own hooks."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (type(msg) is str and msg.startswith(_NOISE))


class PrefectRunHandler(logging.Handler):
    """Routes records of Prefect's run loggers to the sinks of the traced run they belong to.

    ``resolve`` maps a record's attributes (Prefect's extras) to the scope to stamp and the
    sinks, or None for runs that are not traced: those records are left alone.
    """

    def __init__(self, resolve: Resolver) -> None:
        super().__init__(logging.NOTSET)
        self._resolve = resolve
        self._pending: OrderedDict[str, list[logging.LogRecord]] = OrderedDict()
        self._pending_lock = threading.Lock()

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: resolving is a dict lookup and each sink's buffer is thread-safe.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            route = self._resolve(record.__dict__)
            if route is None:
                self._hold(record)
                return
            self._write(record, route)
        except Exception as exc:
            # Never raise into Prefect's engine from a log call.
            report(
                "prefect:route",
                f"workflow-traces: a Prefect run log record was not written: {exc!r}",
            )

    def _hold(self, record: logging.LogRecord) -> None:
        key = record.__dict__.get("flow_run_id")
        if not isinstance(key, str) or "task_run_id" in record.__dict__:
            return
        with self._pending_lock:
            held = self._pending.get(key)
            if held is None:
                held = self._pending[key] = []
                if len(self._pending) > _PENDING_RUNS:
                    self._pending.popitem(last=False)
            if len(held) < _PENDING_RECORDS:
                held.append(record)

    def replay(self, key: str) -> None:
        """Write the records held for flow run ``key``, now that it is known to be traced."""
        with self._pending_lock:
            held = self._pending.pop(key, None)
        for record in held or ():
            self.emit(record)

    def _write(self, record: logging.LogRecord, route: Route) -> None:
        scope, handler, extras = route
        token = set_scope(scope)
        try:
            rec = from_log_record(
                record, scope.run_id or "", scope.parent_run_id, handler.names, extras
            )
        finally:
            reset_scope(token)
        handler.dispatch(rec)


_filter = _HookNoise()
_handler: PrefectRunHandler | None = None


def replay_pending(key: str) -> None:
    """Write what was held for flow run ``key`` (see ``PrefectRunHandler.replay``)."""
    if _handler is not None:
        _handler.replay(key)


def attach_logging(resolve: Resolver | None = None) -> PrefectRunHandler:
    """Attach the routing handler (and the hook-noise filter) to Prefect's run loggers, unless
    they are there already. Call it again after anything that reconfigures logging."""
    global _handler
    if _handler is None:
        if resolve is None:
            raise RuntimeError("attach_logging: the first call must give the resolver")
        _handler = PrefectRunHandler(resolve)
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
    return _handler
