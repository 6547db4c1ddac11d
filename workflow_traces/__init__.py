"""workflow-traces: trace workflow runs to files, SQLite, REST services and Elasticsearch.

The caller's thread only builds a record and queues it; each sink has its own bounded buffer and
worker thread. ``import workflow_traces`` stays light: pydantic and the network clients load
only when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._channel import SinkHealth
from ._context import Scope, current_scope, trace_scope
from ._errors import (
    ConfigError,
    RunNotFoundError,
    SinkError,
    TraceClosedError,
    TraceError,
    UnsafeRunIdError,
)
from ._file import WorkflowFileHandler
from ._handler import BufferedHandler
from ._multi import MultiHandler
from ._record import Record
from ._sqlite import SQLiteHandler
from ._store import Run, RunSummary, Store, open_store
from ._trace import MultiTrace, Trace, get_trace
from ._tree import Node, render_tree

if TYPE_CHECKING:
    from ._elasticsearch import ElasticsearchHandler
    from ._rest import RestAPIHandler
    from ._settings import TraceSettings

__version__ = "0.1.0"

#: Public names loaded on first use, so that ``import workflow_traces`` stays light (name ->
#: module). ``TraceSettings`` needs pydantic-settings.
_LAZY = {
    "TraceSettings": "._settings",
    "ElasticsearchHandler": "._elasticsearch",
    "RestAPIHandler": "._rest",
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
    "MultiHandler",
    "MultiTrace",
    "Node",
    "Record",
    "RestAPIHandler",
    "Run",
    "RunNotFoundError",
    "RunSummary",
    "SQLiteHandler",
    "Scope",
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
    "current_scope",
    "get_trace",
    "open_store",
    "render_tree",
    "trace_scope",
]
