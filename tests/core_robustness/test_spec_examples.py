"""The spec's examples that use the file and SQLite handlers, run as written.

Each snippet below is copied verbatim from the reference design
(``multi-handler-tracing.md``). ``adapt`` makes only the changes the issue allows:

* the import ``ddeutil.workflow.traces`` becomes ``workflow_traces``;
* a ``[...]`` placeholder becomes a file + SQLite handler list;
* REST API and Elasticsearch handlers (network sinks) are left out;
* the async example's ``asyncio.sleep(1)`` is shortened.

Snippets that only build a configuration get a short epilogue that uses it. Each runs in its own
temporary working folder (the spec's paths are relative), and the test then reads the records back
from both stores with ``open_store``.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest
from robust_helpers import messages, record_ids

from workflow_traces import MultiHandler, Trace, open_store

SPEC = Path("/work/shared/spec/multi-handler-tracing.md")

FILLED = (
    '[{"type": "file", "path": "./logs/filled"}, {"type": "sqlite", "path": "./logs/filled.db"}]'
)
NETWORK_TYPES = {"restapi", "elasticsearch"}
NETWORK_NAMES = {"RestAPIHandler", "ElasticsearchHandler", "restapi_handler"}


class _Adapt(ast.NodeTransformer):
    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        if node.module == "ddeutil.workflow.traces":
            node.module = "workflow_traces"
            node.names = [a for a in node.names if a.name not in NETWORK_NAMES]
            if not node.names:
                return None
        return node

    def visit_List(self, node: ast.List) -> ast.AST:
        only = node.elts[0] if len(node.elts) == 1 else None
        if isinstance(only, ast.Constant) and only.value is Ellipsis:
            return ast.parse(FILLED, mode="eval").body
        self.generic_visit(node)
        node.elts = [e for e in node.elts if not _is_network_dict(e)]
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "sleep"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            node.args[0] = ast.Constant(0.01)
        return node


def _is_network_dict(node: ast.AST) -> bool:
    if not isinstance(node, ast.Dict):
        return False
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == "type":
            return isinstance(value, ast.Constant) and value.value in NETWORK_TYPES
    return False


def _mentions_network(stmt: ast.stmt) -> bool:
    return any(isinstance(n, ast.Name) and n.id in NETWORK_NAMES for n in ast.walk(stmt))


def adapt(source: str) -> str:
    tree = ast.parse(source)
    tree.body = [s for s in tree.body if not _mentions_network(s)]
    tree = _Adapt().visit(tree)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def run_example(source: str, prelude: str = "", epilogue: str = "") -> dict[str, Any]:
    """Run the adapted snippet; close every trace and handler it left open afterwards."""
    code = "\n".join(p for p in (prelude, adapt(source), epilogue) if p)
    ns: dict[str, Any] = {"__name__": "spec_example"}
    try:
        exec(compile(code, "<spec example>", "exec"), ns)
    finally:
        for value in list(ns.values()):
            if isinstance(value, Trace | logging.Handler):
                value.close()
    return ns


GET_TRACE = "from workflow_traces import get_trace"

# ---------------------------------------------------------------------------------------------
# The snippets, verbatim.
# ---------------------------------------------------------------------------------------------

BASIC = """\
from ddeutil.workflow.traces import get_trace

# Configure multi-handler with file and SQLite
extras = {
    "trace_type": "multi",
    "handlers": [
        {
            "type": "file",
            "path": "./logs/multi-example",
            "buffer_size": 8192,
            "flush_interval": 1.0,
        },
        {
            "type": "sqlite",
            "path": "./logs/multi_traces.db",
            "buffer_size": 100,
            "flush_interval": 2.0,
        }
    ],
    "fail_silently": True,
    "workflow_name": "multi-handler-workflow",
    "stage_name": "multi-stage",
    "job_name": "multi-job",
}

# Create trace instance
trace = get_trace(
    run_id="multi-example-001",
    parent_run_id="parent-001",
    extras=extras
)

# Use the trace
trace.info("Starting multi-handler workflow")
trace.debug("Processing data")
trace.error("Error occurred")
trace.close()
"""

ADVANCED = """\
# Configure with all handler types
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
            "api_url": "https://api.example.com/logs",
            "api_key": "your-api-key",
            "service_type": "datadog",
            "buffer_size": 50,
            "flush_interval": 2.0,
            "timeout": 10.0,
            "max_retries": 3,
        },
        {
            "type": "elasticsearch",
            "es_hosts": "http://localhost:9200",
            "index_name": "advanced-multi-traces",
            "username": "elastic",
            "password": "changeme",
            "buffer_size": 100,
            "flush_interval": 2.0,
            "timeout": 30.0,
            "max_retries": 3,
        }
    ],
    "fail_silently": True,
    "workflow_name": "advanced-multi-workflow",
    "environment": "production",
}
"""

FILE_HANDLER_TYPE = """\
{
    "type": "file",
    "path": "./logs/workflow",        # Log directory
    "buffer_size": 8192,              # Buffer size in bytes
    "flush_interval": 1.0,            # Flush interval in seconds
}
"""

SQLITE_HANDLER_TYPE = """\
{
    "type": "sqlite",
    "path": "./logs/workflow_traces.db",
    "buffer_size": 100,               # Number of records to buffer
    "flush_interval": 2.0,            # Flush interval in seconds
}
"""

ADDING = """\
from ddeutil.workflow.traces import SQLiteHandler, RestAPIHandler

# Create trace with initial handlers
trace = get_trace(
    run_id="dynamic-example",
    extras={"trace_type": "multi", "handlers": [...]}
)

# Add SQLite handler dynamically
sqlite_handler = SQLiteHandler(
    run_id=trace.run_id,
    parent_run_id=trace.parent_run_id,
    db_path="./logs/dynamic_traces.db",
    extras=trace.extras,
)
trace.add_handler(sqlite_handler)

# Add REST API handler dynamically
restapi_handler = RestAPIHandler(
    run_id=trace.run_id,
    parent_run_id=trace.parent_run_id,
    api_url="https://api.example.com/logs",
    service_type="generic",
    extras=trace.extras,
)
trace.add_handler(restapi_handler)
"""

REMOVING = """\
# Remove a specific handler
trace.remove_handler(sqlite_handler)

# Check handler count
print(f"Active handlers: {trace.handler_count}")
"""

INSPECTION = """\
# Get handler information
print(f"Handler count: {trace.handler_count}")
print(f"Handler types: {trace.handler_types}")

# Get handlers by type
from ddeutil.workflow.traces import WorkflowFileHandler, SQLiteHandler
file_handlers = trace.get_handlers_by_type(WorkflowFileHandler)
sqlite_handlers = trace.get_handlers_by_type(SQLiteHandler)

# Get specific handler
file_handler = trace.get_handler_by_type(WorkflowFileHandler)
if file_handler:
    print(f"File handler path: {file_handler.log_dir}")
"""

HIGH_THROUGHPUT = """\
# High-throughput configuration
extras = {
    "trace_type": "multi",
    "handlers": [
        {
            "type": "file",
            "buffer_size": 16384,    # Larger buffer
            "flush_interval": 5.0,   # Less frequent flushes
        },
        {
            "type": "sqlite",
            "buffer_size": 500,      # More records per batch
            "flush_interval": 5.0,   # Less frequent flushes
        }
    ]
}
"""

PERFORMANCE = """\
import time

# Test single handler
single_trace = get_trace(run_id="single", extras={"trace_type": "file"})
start_time = time.time()
for i in range(1000):
    single_trace.info(f"Message {i}")
single_trace.close()
single_duration = time.time() - start_time

# Test multi-handler
multi_trace = get_trace(run_id="multi", extras={"trace_type": "multi", "handlers": [...]})
start_time = time.time()
for i in range(1000):
    multi_trace.info(f"Message {i}")
multi_trace.close()
multi_duration = time.time() - start_time

print(f"Single handler: {single_duration:.3f}s")
print(f"Multi handler: {multi_duration:.3f}s")
print(f"Performance ratio: {single_duration / multi_duration:.2f}x")
"""

DEV_CONFIG = """\
def get_dev_config():
    return {
        "trace_type": "multi",
        "handlers": [
            {
                "type": "file",
                "path": "./logs/dev",
                "buffer_size": 4096,
                "flush_interval": 1.0,
            },
            {
                "type": "sqlite",
                "path": "./logs/dev_traces.db",
                "buffer_size": 50,
                "flush_interval": 1.0,
            }
        ],
        "fail_silently": True,
        "environment": "development",
    }
"""

STAGING_CONFIG = """\
def get_staging_config():
    return {
        "trace_type": "multi",
        "handlers": [
            {
                "type": "file",
                "path": "./logs/staging",
                "buffer_size": 8192,
                "flush_interval": 2.0,
            },
            {
                "type": "sqlite",
                "path": "./logs/staging_traces.db",
                "buffer_size": 100,
                "flush_interval": 2.0,
            },
            {
                "type": "restapi",
                "api_url": "https://staging-api.example.com/logs",
                "service_type": "generic",
                "buffer_size": 50,
                "flush_interval": 2.0,
            }
        ],
        "fail_silently": True,
        "environment": "staging",
    }
"""

PRODUCTION_CONFIG = """\
def get_production_config():
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
                "api_url": "https://api.example.com/logs",
                "api_key": "prod-api-key",
                "service_type": "datadog",
                "buffer_size": 100,
                "flush_interval": 5.0,
            },
            {
                "type": "elasticsearch",
                "es_hosts": "https://elastic.example.com:9200",
                "index_name": "production-traces",
                "username": "elastic",
                "password": "secure-password",
                "buffer_size": 200,
                "flush_interval": 5.0,
            }
        ],
        "fail_silently": False,  # Fail fast in production
        "environment": "production",
    }
"""

ASYNC = """\
import asyncio

async def async_workflow():
    trace = get_trace(
        run_id="async-example",
        extras={"trace_type": "multi", "handlers": [...]}
    )

    try:
        await trace.ainfo("Starting async workflow")
        await trace.adebug("Processing async data")

        # Simulate async work
        await asyncio.sleep(1)

        await trace.ainfo("Async workflow completed")
    finally:
        trace.close()

# Run async workflow
asyncio.run(async_workflow())
"""

DIRECT = """\
import logging
from ddeutil.workflow.traces import MultiHandler, WorkflowFileHandler, SQLiteHandler

# Create individual handlers
file_handler = WorkflowFileHandler(
    run_id="direct-example",
    base_path="./logs/direct",
    extras={"workflow_name": "direct-test"}
)

sqlite_handler = SQLiteHandler(
    run_id="direct-example",
    db_path="./logs/direct_traces.db",
    extras={"workflow_name": "direct-test"}
)

# Create multi-handler
multi_handler = MultiHandler(
    run_id="direct-example",
    handlers=[file_handler, sqlite_handler],
    extras={"workflow_name": "direct-test"},
    fail_silently=True,
)

# Use with Python logger
logger = logging.getLogger("direct-test")
logger.setLevel(logging.DEBUG)
logger.addHandler(multi_handler)

# Log messages
logger.info("Direct multi-handler test")
logger.debug("Debug information")
logger.warning("Warning message")
logger.error("Error message")

# Cleanup
multi_handler.close()
"""

DEBUG_MODE = """\
import logging
logging.getLogger("ddeutil.workflow").setLevel(logging.DEBUG)

trace = get_trace(run_id="debug-test", extras={"trace_type": "multi", "handlers": [...]})
"""

MIGRATE_SINGLE = """\
# Before: Single file handler
trace = get_trace(run_id="example", extras={"trace_type": "file"})

# After: Multi-handler with file and SQLite
trace = get_trace(
    run_id="example",
    extras={
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": "./logs"},
            {"type": "sqlite", "path": "./logs/traces.db"}
        ]
    }
)
"""

MIGRATE_MULTIPLE = """\
# Before: Multiple trace instances
file_trace = get_trace(run_id="example", extras={"trace_type": "file"})
sqlite_trace = get_trace(run_id="example", extras={"trace_type": "sqlite"})

file_trace.info("Message")
sqlite_trace.info("Message")

# After: Single multi-handler trace
trace = get_trace(
    run_id="example",
    extras={
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": "./logs"},
            {"type": "sqlite", "path": "./logs/traces.db"}
        ]
    }
)

trace.info("Message")  # Logs to both destinations
"""

SNIPPETS = {
    "basic": BASIC,
    "advanced": ADVANCED,
    "file_handler_type": FILE_HANDLER_TYPE,
    "sqlite_handler_type": SQLITE_HANDLER_TYPE,
    "adding": ADDING,
    "removing": REMOVING,
    "inspection": INSPECTION,
    "high_throughput": HIGH_THROUGHPUT,
    "performance": PERFORMANCE,
    "dev_config": DEV_CONFIG,
    "staging_config": STAGING_CONFIG,
    "production_config": PRODUCTION_CONFIG,
    "async": ASYNC,
    "direct": DIRECT,
    "debug_mode": DEBUG_MODE,
    "migrate_single": MIGRATE_SINGLE,
    "migrate_multiple": MIGRATE_MULTIPLE,
}


@pytest.mark.skipif(not SPEC.is_file(), reason="the reference design is not on this machine")
@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet_is_verbatim_from_the_spec(name: str) -> None:
    assert SNIPPETS[name].strip() in SPEC.read_text(encoding="utf-8")


def test_adapt_changes_only_what_is_allowed() -> None:
    adapted = adapt(ADDING)
    assert "ddeutil" not in adapted
    assert "RestAPIHandler" not in adapted and "restapi_handler" not in adapted
    assert "./logs/filled.db" in adapted
    assert "api.example.com" not in adapt(PRODUCTION_CONFIG)
    assert "es_hosts" not in adapt(PRODUCTION_CONFIG)
    assert "asyncio.sleep(0.01)" in adapt(ASYNC)


def _both(file_dir: str, db: str, run_id: str) -> tuple[list[str], list[str]]:
    return messages(file_dir, run_id), messages(db, run_id)


def test_basic_configuration(in_tmp: Path) -> None:
    run_example(BASIC)
    expected = ["Starting multi-handler workflow", "Processing data", "Error occurred"]
    for location in ("logs/multi-example", "logs/multi_traces.db"):
        with open_store(location) as store:
            run = store.get_run("multi-example-001")
        assert [r.message for r in run.records] == expected
        assert run.parent_run_id == "parent-001"
        assert {r.workflow_name for r in run.records} == {"multi-handler-workflow"}
        assert {r.job_name for r in run.records} == {"multi-job"}
        assert {r.stage_name for r in run.records} == {"multi-stage"}
        assert [r.level for r in run.records] == ["INFO", "DEBUG", "ERROR"]
    stderr = (in_tmp / "logs/multi-example/run_id=multi-example-001/stderr.txt").read_text()
    assert "Error occurred" in stderr and "Processing data" not in stderr


def test_advanced_configuration_without_network_handlers(in_tmp: Path) -> None:
    run_example(
        ADVANCED,
        prelude=GET_TRACE,
        epilogue=(
            "trace = get_trace(run_id='advanced-001', extras=extras)\n"
            "trace.info('advanced')\n"
            "trace.close()"
        ),
    )
    for location in ("logs/advanced-multi", "logs/advanced_multi_traces.db"):
        with open_store(location) as store:
            (rec,) = store.get_run("advanced-001").records
        assert rec.message == "advanced"
        assert rec.workflow_name == "advanced-multi-workflow"
        assert rec.extras == {"environment": "production"}


@pytest.mark.parametrize("name", ["file_handler_type", "sqlite_handler_type"])
def test_handler_type_dicts(in_tmp: Path, name: str) -> None:
    source = SNIPPETS[name]
    run_example(
        "handler = " + source,
        prelude=GET_TRACE,
        epilogue=(
            "trace = get_trace(run_id='typed', extras={'trace_type': 'multi', "
            "'handlers': [handler]})\n"
            "trace.info('typed')\n"
            "trace.close()"
        ),
    )
    location = "logs/workflow" if name.startswith("file") else "logs/workflow_traces.db"
    assert messages(location, "typed") == ["typed"]


def test_dynamic_add_and_remove(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(
        ADDING + "\ntrace.info('with three sinks')\n" + REMOVING + "\ntrace.info('after removal')",
        prelude=GET_TRACE,
    )
    assert "Active handlers: 2" in capsys.readouterr().out
    # The two filled sinks saw both records; the removed SQLite handler only the first.
    # remove_handler leaves it open (it may serve elsewhere); run_example then closes it.
    for location in ("logs/filled", "logs/filled.db"):
        assert messages(location, "dynamic-example") == ["with three sinks", "after removal"]
    assert messages("logs/dynamic_traces.db", "dynamic-example") == ["with three sinks"]
    assert ns["sqlite_handler"].health().written == 1


def test_handler_inspection(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(
        INSPECTION,
        prelude=GET_TRACE
        + "\ntrace = get_trace(run_id='inspect', extras={'trace_type': 'multi', 'handlers': "
        + FILLED
        + "})",
        epilogue="trace.info('inspected')",
    )
    out = capsys.readouterr().out
    assert "Handler count: 2" in out
    assert "Handler types: ['WorkflowFileHandler', 'SQLiteHandler']" in out
    assert f"File handler path: {Path('./logs/filled')}" in out
    assert len(ns["file_handlers"]) == 1 and len(ns["sqlite_handlers"]) == 1
    assert ns["file_handler"].log_dir == Path("./logs/filled")
    assert _both("logs/filled", "logs/filled.db", "inspect") == (["inspected"], ["inspected"])


def test_high_throughput_configuration_uses_default_paths(in_tmp: Path) -> None:
    run_example(
        HIGH_THROUGHPUT,
        prelude=GET_TRACE,
        epilogue=(
            "trace = get_trace(run_id='fast', extras=extras)\n"
            "for i in range(2000):\n    trace.info(f'm{i}')\n"
            "trace.close()"
        ),
    )
    # Without a path: the documented defaults, ./logs and ./logs/workflow_traces.db.
    for location in ("logs", "logs/workflow_traces.db"):
        assert len(record_ids(location, "fast")) == 2000


def test_performance_comparison(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_example(PERFORMANCE, prelude=GET_TRACE)
    out = capsys.readouterr().out
    assert "Performance ratio:" in out  # printed; no timing is asserted
    assert messages("logs", "single") == [f"Message {i}" for i in range(1000)]
    for location in ("logs/filled", "logs/filled.db"):
        assert messages(location, "multi") == [f"Message {i}" for i in range(1000)]


@pytest.mark.parametrize(
    ("name", "func", "file_dir", "db"),
    [
        ("dev_config", "get_dev_config", "logs/dev", "logs/dev_traces.db"),
        ("staging_config", "get_staging_config", "logs/staging", "logs/staging_traces.db"),
        (
            "production_config",
            "get_production_config",
            "logs/production",
            "logs/production_traces.db",
        ),
    ],
)
def test_environment_configurations(
    in_tmp: Path, name: str, func: str, file_dir: str, db: str
) -> None:
    run_example(
        SNIPPETS[name],
        prelude=GET_TRACE,
        epilogue=(
            f"trace = get_trace(run_id='env', extras={func}())\n"
            "trace.info('configured')\n"
            "trace.close()"
        ),
    )
    environment = name.split("_")[0]
    environment = {"dev": "development"}.get(environment, environment)
    for location in (file_dir, db):
        with open_store(location) as store:
            (rec,) = store.get_run("env").records
        assert rec.message == "configured"
        assert rec.extras == {"environment": environment}


def test_async_example(in_tmp: Path) -> None:
    run_example(ASYNC, prelude=GET_TRACE)
    expected = ["Starting async workflow", "Processing async data", "Async workflow completed"]
    assert _both("logs/filled", "logs/filled.db", "async-example") == (expected, expected)


def test_direct_handler_usage(in_tmp: Path) -> None:
    ns = run_example(DIRECT)
    logging.getLogger("direct-test").removeHandler(ns["multi_handler"])
    expected = [
        "Direct multi-handler test",
        "Debug information",
        "Warning message",
        "Error message",
    ]
    for location in ("logs/direct", "logs/direct_traces.db"):
        with open_store(location) as store:
            run = store.get_run("direct-example")
        assert [r.message for r in run.records] == expected
        assert {r.workflow_name for r in run.records} == {"direct-test"}
        assert {r.logger for r in run.records} == {"direct-test"}
        # The user's own line, not the logging machinery's.
        assert {r.filename for r in run.records} == {"<spec example>"}
    assert ns["multi_handler"].closed


def test_debug_mode(in_tmp: Path) -> None:
    run_example(DEBUG_MODE, prelude=GET_TRACE, epilogue="trace.warning('debugging')")
    assert _both("logs/filled", "logs/filled.db", "debug-test") == (["debugging"], ["debugging"])


def test_migration_from_single_handler(in_tmp: Path) -> None:
    run_example(MIGRATE_SINGLE, prelude=GET_TRACE, epilogue="trace.info('migrated')")
    assert _both("logs", "logs/traces.db", "example") == (["migrated"], ["migrated"])


def test_migration_from_multiple_trace_instances(in_tmp: Path) -> None:
    run_example(MIGRATE_MULTIPLE, prelude=GET_TRACE)
    # Before: one record through each single trace; after: one through the multi trace.
    assert messages("logs", "example") == ["Message", "Message"]
    assert messages("logs/workflow_traces.db", "example") == ["Message"]
    assert messages("logs/traces.db", "example") == ["Message"]
    assert isinstance(MultiHandler, type)
