"""Performance comparison (spec: "Performance Comparison"): one sink against two.

The caller only queues each record; sink workers write. So the time a loop of trace.info()
calls takes hardly grows with the number of sinks. (These are rough wall-clock figures from
one run; ``make bench`` measures properly.)
"""

from __future__ import annotations

import time

from workflow_traces import get_trace, open_store

N = 1000
multi_extras = {
    "trace_type": "multi",
    "handlers": [
        {"type": "file", "path": "./logs/perf-multi"},
        {"type": "sqlite", "path": "./logs/perf_traces.db"},
    ],
}

# Test single handler
single_trace = get_trace(run_id="single", extras={"trace_type": "file", "path": "./logs/perf"})
start_time = time.time()
for i in range(N):
    single_trace.info(f"Message {i}")
logging_done = time.time()
single_trace.close()
single_duration = time.time() - start_time
single_calls = logging_done - start_time

# Test multi-handler
multi_trace = get_trace(run_id="multi", extras=multi_extras)
start_time = time.time()
for i in range(N):
    multi_trace.info(f"Message {i}")
logging_done = time.time()
multi_trace.close()
multi_duration = time.time() - start_time
multi_calls = logging_done - start_time

print(f"Single handler: {single_duration:.3f}s ({single_calls * 1e6 / N:.1f} µs per call)")
print(f"Multi handler: {multi_duration:.3f}s ({multi_calls * 1e6 / N:.1f} µs per call)")
print(f"Performance ratio: {single_duration / multi_duration:.2f}x")

for location, run_id in (("./logs/perf", "single"), ("./logs/perf_traces.db", "multi")):
    with open_store(location) as store:
        count = store.get_run(run_id).record_count
    assert count == N, f"{location}: expected {N} records, found {count}"
    print(f"wrote: {location}")
print("wrote: ./logs/perf-multi")
