"""The caller's cost of a stdlib call routed by TRACE_EXTRA_LOGGERS inside a scope, against the
same call through a Logger with a MultiHandler on it (the Logger + MultiHandler row of
``make bench``); both queue into one sink-less MultiHandler, so only the caller's work counts.

    .venv/bin/python benchmarks/ab_extra_loggers.py
"""

from __future__ import annotations

import logging
import statistics
import time
from urllib.parse import urlparse

from workflow_traces.core.context import Scope, set_active_trace, set_scope
from workflow_traces.core.extra_loggers import ROUTER
from workflow_traces.core.scoped import ScopedTrace
from workflow_traces.core.trace import MultiTrace
from workflow_traces.pipeline.multi import MultiHandler

N = 100_000
ROUNDS = 11


def _time(logger: logging.Logger) -> float:
    info = logger.info
    t0 = time.perf_counter()
    for _ in range(N):
        info("message")
    return (time.perf_counter() - t0) / N * 1e6


def main() -> None:
    handler = MultiHandler("r")
    base = MultiTrace(urlparse("multi://"), "r", None, {}, handler)
    scope = Scope().child("wf", "j", "s", "r", None)
    set_scope(scope)
    set_active_trace(ScopedTrace(base, scope))
    direct = logging.getLogger("bench.direct")
    direct.addHandler(handler)
    routed = logging.getLogger("bench.routed")
    routed.addHandler(ROUTER)
    for lg in (direct, routed):
        lg.propagate = False
        lg.setLevel(logging.INFO)
    a: list[float] = []
    b: list[float] = []
    for _ in range(ROUNDS):
        a.append(_time(direct))
        b.append(_time(routed))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"Logger + MultiHandler: {ma:.3f} us  Logger + TRACE_EXTRA_LOGGERS router: {mb:.3f} us")


if __name__ == "__main__":
    main()
