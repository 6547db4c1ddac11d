"""Real traced runs for the read-side tests, written through the plain integration."""

from __future__ import annotations

import threading
import time
from typing import Any

from workflow_traces.integrations.plain import job, stage, workflow

XSS_MESSAGE = '<script>window.__xss = 1</script> and <img src=x onerror="window.__xss = 2">'
XSS_STAGE = "<img src=x onerror=alert(1)>"
TERMINAL_ATTACK = "red \x1b[31mALERT\x1b[0m\rover\x07 bell \u202eevil"


def sinks(files: Any, db: Any, es_url: str | None = None, index: str = "traces") -> dict[str, Any]:
    """Extras that trace to a file folder, a SQLite database and (given a URL) Elasticsearch."""
    handlers: list[dict[str, Any]] = [
        {"type": "file", "path": str(files), "flush_interval": 0.05},
        {"type": "sqlite", "path": str(db), "flush_interval": 0.05},
    ]
    if es_url is not None:
        handlers.append(
            {
                "type": "elasticsearch",
                "es_hosts": es_url,
                "index_name": index,
                "flush_interval": 0.05,
            }
        )
    return {"trace_type": "multi", "handlers": handlers, "fail_silently": False}


def plain_run(extras: dict[str, Any], run_id: str = "etl-1", lines: int = 5) -> None:
    """Workflow "etl" with jobs extract (stage fetch retried: attempt 1 fails, 2 succeeds),
    transform (stage validate fails, caught; a child run "enrich" nested in stage clean) and
    load; logs at every level, an exception with its traceback, and XSS / terminal strings."""
    with workflow("etl", run_id=run_id, **extras) as trace:
        trace.info("etl starting")
        with job("extract"):
            for attempt in (1, 2):
                try:
                    with stage("fetch") as t:
                        t.info(f"fetch attempt {attempt}")
                        if attempt == 1:
                            raise ConnectionError("source timed out")
                except ConnectionError:
                    pass
            with stage("parse") as t:
                for i in range(lines):
                    t.debug(f"parsed row {i}")
        with job("transform"):
            try:
                with stage("validate") as t:
                    t.warning("3 rows look odd")
                    raise ValueError("row 7: bad date")
            except ValueError:
                pass
            with stage("clean") as t:
                t.info(XSS_MESSAGE)
                t.info(TERMINAL_ATTACK)
                with workflow("enrich", run_id=f"{run_id}-child") as child, job("lookup"):
                    child.info("enriching 10 rows")
        with job("load"):
            with stage(XSS_STAGE) as t:
                try:
                    1 / 0  # noqa: B018
                except ZeroDivisionError:
                    t.exception("load hit a snag")
            trace.error("load finished with errors")


def live_run(
    extras: dict[str, Any], run_id: str, go: threading.Event, done: threading.Event
) -> None:
    """A workflow that logs a line, then each time ``go`` is set one more, until ``done``."""
    with workflow("live", run_id=run_id, **extras) as trace, job("stream"), stage("tick") as t:
        t.info("tick 0")
        n = 0
        while not done.is_set():
            if go.wait(0.05):
                go.clear()
                n += 1
                t.info(f"tick {n}")
                trace.flush()
        time.sleep(0.01)
