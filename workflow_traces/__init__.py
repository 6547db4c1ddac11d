"""workflow-traces: trace workflow runs to files, SQLite, REST services and Elasticsearch.

The caller's thread only builds a record and queues it; each sink has its own bounded buffer and
worker thread. ``import workflow_traces`` stays light: pydantic and the network clients load
only when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workflow_traces.core.context import Scope, current_scope, trace_scope
from workflow_traces.core.handoff import context_env
from workflow_traces.core.record import Record
from workflow_traces.core.trace import MultiTrace, Trace, get_trace
from workflow_traces.errors import (
    ConfigError,
    ExportError,
    PayloadTooLargeError,
    PermanentError,
    RetryableError,
    RunNotFoundError,
    SinkError,
    TraceClosedError,
    TraceError,
    UnsafeRunIdError,
)
from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.exporters.file import WorkflowFileHandler
from workflow_traces.exporters.sqlite.handler import SQLiteHandler
from workflow_traces.pipeline.channel import SinkHealth
from workflow_traces.pipeline.handler import BufferedHandler
from workflow_traces.pipeline.multi import MultiHandler
from workflow_traces.store.local import Run, RunSummary, Store, open_store
from workflow_traces.store.tree import Node, render_tree

if TYPE_CHECKING:
    from workflow_traces.exporters.elasticsearch.handler import ElasticsearchHandler
    from workflow_traces.exporters.elasticsearch.opensearch import OpenSearchHandler
    from workflow_traces.exporters.rest.handler import RestAPIHandler
    from workflow_traces.pruning.prune import PruneResult, prune
    from workflow_traces.settings.model import TraceSettings
    from workflow_traces.shipping.shipper import ShipResult, ship

__version__ = "0.1.0"

#: Public names loaded on first use, so that ``import workflow_traces`` stays light (name ->
#: module). ``TraceSettings`` needs pydantic-settings.
_LAZY = {
    "TraceSettings": ".settings.model",
    "ElasticsearchHandler": ".exporters.elasticsearch.handler",
    "OpenSearchHandler": ".exporters.elasticsearch.opensearch",
    "RestAPIHandler": ".exporters.rest.handler",
    "prune": ".pruning.prune",
    "PruneResult": ".pruning.prune",
    "ship": ".shipping.shipper",
    "ShipResult": ".shipping.shipper",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BufferedHandler",
    "ConfigError",
    "ElasticsearchHandler",
    "ExportError",
    "ExportResult",
    "Exporter",
    "MultiHandler",
    "MultiTrace",
    "Node",
    "OpenSearchHandler",
    "PayloadTooLargeError",
    "PermanentError",
    "PruneResult",
    "Record",
    "RestAPIHandler",
    "RetryableError",
    "Run",
    "RunNotFoundError",
    "RunSummary",
    "SQLiteHandler",
    "Scope",
    "ShipResult",
    "SinkError",
    "SinkHealth",
    "Store",
    "Trace",
    "TraceClosedError",
    "TraceError",
    "TraceSettings",
    "UnsafeRunIdError",
    "WorkflowFileHandler",
    "__version__",
    "context_env",
    "current_scope",
    "get_trace",
    "open_store",
    "prune",
    "render_tree",
    "ship",
    "trace_scope",
]
