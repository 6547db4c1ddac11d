"""Fail-silently behaviour and error monitoring (spec: "Error Handling").

A REST sink whose service is down (a local port that refuses connections) fails; with
``fail_silently=True`` the file sink goes on and the failure is reported through the
``workflow_traces`` logger; with ``fail_silently=False`` the next flush raises one SinkError
naming the sink. No network needed.
"""

from __future__ import annotations

import contextlib
import logging

from local_services.receiver import LocalReceiver

from workflow_traces import SinkError, get_trace, open_store

# Monitor handler errors: our diagnostics go to the "workflow_traces" logger.
logging.basicConfig(level=logging.WARNING, format="  [monitor] %(name)s: %(message)s")
logging.getLogger("workflow_traces").setLevel(logging.WARNING)

down = LocalReceiver("generic")
down.up()
down.down()  # the port now refuses connections: "https://invalid-url.com" without a network
dead_url = down.url

extras = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "./logs/working-handler"},
        {"type": "restapi", "api_url": dead_url, "max_retries": 0, "timeout": 2.0},
    ],
    "fail_silently": True,  # Continue even if REST API fails
}

trace = get_trace(run_id="error-test", extras=extras)
trace.info("This will still work")  # Logs to file; the REST sink fails and is reported
# A sink whose service is down keeps its records and waits for it until close()'s deadline
# (30 s by default): give up sooner here.
trace.close(timeout=2.0)
for name, health in trace.health().items():
    print(f"{name.split('?')[0]}: written={health.written} failed={health.failed}")
with open_store("./logs/working-handler") as store:
    print(f"file sink: {[r.message for r in store.get_run('error-test').records]}")

# Fail fast: the failure reaches the caller at the next flush()/close(), naming the sink.
strict = get_trace(run_id="strict-test", extras={**extras, "fail_silently": False})
strict.info("the file sink writes this; the REST sink cannot")
try:
    strict.flush(timeout=10)
except SinkError as exc:
    print(f"SinkError: {exc}")
    print(f"failed sinks: {sorted(exc.failures)}")
else:
    raise SystemExit("expected a SinkError")
finally:
    with contextlib.suppress(SinkError):  # close() reports the same failure again
        strict.close(timeout=2.0)
down.stop()
print("wrote: ./logs/working-handler")
