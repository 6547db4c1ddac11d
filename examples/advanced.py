"""Advanced configuration (spec: "Advanced Configuration"): all four handler types at once.

The REST API (a Datadog-style intake) and Elasticsearch are local stand-ins on 127.0.0.1
(``workflow_traces.testing``), so this runs with no network. Files and SQLite go to ./logs.
"""

from __future__ import annotations

from local_services.elasticsearch import LocalElasticsearch
from local_services.receiver import LocalReceiver

from workflow_traces import get_trace, open_store

with (
    LocalReceiver("datadog", api_key="your-api-key") as api,
    LocalElasticsearch(username="elastic", password="changeme", refresh_interval=None) as es,
):
    # Configure with all handler types (the spec's values, with local URLs)
    extras = {
        "trace_type": "multi",
        "handlers": [
            {
                "type": "file",
                "path": "./logs/advanced-multi",
                "buffer_size": 8192,
                "flush_interval": 1.0,
            },
            {
                "type": "sqlite",
                "path": "./logs/advanced_multi_traces.db",
                "buffer_size": 100,
                "flush_interval": 2.0,
            },
            {
                "type": "restapi",
                "api_url": api.url,
                "api_key": "your-api-key",
                "service_type": "datadog",
                "buffer_size": 50,
                "flush_interval": 2.0,
                "timeout": 10.0,
                "max_retries": 3,
            },
            {
                "type": "elasticsearch",
                "es_hosts": es.url,
                "index_name": "advanced-multi-traces",
                "username": "elastic",
                "password": "changeme",
                "buffer_size": 100,
                "flush_interval": 2.0,
                "timeout": 30.0,
                "max_retries": 3,
            },
        ],
        "fail_silently": True,
        "workflow_name": "advanced-multi-workflow",
        "environment": "production",
    }

    trace = get_trace(run_id="advanced-example", extras=extras)
    print(f"Handler types: {trace.handler_types}")
    for i in range(10):
        trace.info(f"processing batch {i}")
    trace.warning("slow batch")
    trace.close()  # flushes every sink first

    sent = len(api.record_ids())
    indexed = len(es.documents("advanced-multi-traces"))
    print(f"REST API received {sent} records; Elasticsearch indexed {indexed} documents")
    assert sent == 11 and indexed == 11, (sent, indexed)
    # open_store reads Elasticsearch too (same answers as SQLite and files)
    with open_store("./logs/advanced_multi_traces.db") as store:
        print(f"SQLite: {store.get_run('advanced-example').record_count} records")

for name, health in trace.health().items():
    print(f"  {name}: written={health.written} failed={health.failed}")
print("wrote: ./logs/advanced-multi")
print("wrote: ./logs/advanced_multi_traces.db")
