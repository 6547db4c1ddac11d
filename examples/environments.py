"""Environment-specific configuration (spec: "Environment-Specific Configuration").

Development writes files and SQLite; staging adds a generic REST API; production adds a
Datadog-style API with a key and Elasticsearch with a password, and fails fast. The network
services are local stand-ins on 127.0.0.1, so all three run here with no network. Each
environment runs a small traced workflow (the plain-Python adapter).
"""

from __future__ import annotations

import sys
from typing import Any

from local_services.elasticsearch import LocalElasticsearch
from local_services.receiver import LocalReceiver
from workflow_traces.integrations.plain import job, stage, workflow

from workflow_traces import open_store


def get_dev_config() -> dict[str, Any]:
    return {
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": "./logs/dev", "buffer_size": 4096, "flush_interval": 1.0},
            {
                "type": "sqlite",
                "path": "./logs/dev_traces.db",
                "buffer_size": 50,
                "flush_interval": 1.0,
            },
        ],
        "fail_silently": True,
        "environment": "development",
    }


def get_staging_config(api_url: str) -> dict[str, Any]:
    return {
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": "./logs/staging", "buffer_size": 8192, "flush_interval": 2.0},
            {
                "type": "sqlite",
                "path": "./logs/staging_traces.db",
                "buffer_size": 100,
                "flush_interval": 2.0,
            },
            {
                "type": "restapi",
                "api_url": api_url,
                "service_type": "generic",
                "buffer_size": 50,
                "flush_interval": 2.0,
            },
        ],
        "fail_silently": True,
        "environment": "staging",
    }


def get_production_config(api_url: str, es_url: str) -> dict[str, Any]:
    return {
        "trace_type": "multi",
        "handlers": [
            {
                "type": "file",
                "path": "./logs/production",
                "buffer_size": 16384,
                "flush_interval": 5.0,
            },
            {
                "type": "sqlite",
                "path": "./logs/production_traces.db",
                "buffer_size": 200,
                "flush_interval": 5.0,
            },
            {
                "type": "restapi",
                "api_url": api_url,
                "api_key": "prod-api-key",
                "service_type": "datadog",
                "buffer_size": 100,
                "flush_interval": 5.0,
            },
            {
                "type": "elasticsearch",
                "es_hosts": es_url,
                "index_name": "production-traces",
                "username": "elastic",
                "password": "secure-password",
                "buffer_size": 200,
                "flush_interval": 5.0,
            },
        ],
        "fail_silently": False,  # Fail fast in production
        "environment": "production",
    }


def nightly(environment: str, config: dict[str, Any]) -> str:
    with workflow("nightly", **config) as trace:
        with job("extract"), stage("fetch") as st:
            st.info(f"fetching in {environment}")
        with job("load"), stage("write") as st:
            st.info(f"writing in {environment}")
        print(f"{environment}: {trace.handler_types}")
        return trace.run_id


def main() -> int:
    run_ids = {"dev": nightly("development", get_dev_config())}
    with LocalReceiver("generic") as staging_api:
        run_ids["staging"] = nightly("staging", get_staging_config(staging_api.url))
        print(f"  staging API received {len(staging_api.record_ids())} records")
        assert len(staging_api.record_ids()) == 12  # 2 logs + 10 lifecycle events
    with (
        LocalReceiver("datadog", api_key="prod-api-key") as prod_api,
        LocalElasticsearch(username="elastic", password="secure-password") as es,
    ):
        run_ids["production"] = nightly("production", get_production_config(prod_api.url, es.url))
        docs = len(es.documents("production-traces"))
        print(f"  production API received {len(prod_api.record_ids())}; ES indexed {docs}")
        assert len(prod_api.record_ids()) == 12 and docs == 12
    for env in ("dev", "staging", "production"):
        with open_store(f"./logs/{env}_traces.db") as store:
            run = store.get_run(run_ids[env])
        print(
            f"{env}: {run.status}, {run.record_count} records, environment stamped: "
            f"{run.records[1].extras}"
        )
        print(f"wrote: ./logs/{env}_traces.db")
        print(f"wrote: ./logs/{env}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
