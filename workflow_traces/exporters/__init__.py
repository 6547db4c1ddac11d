"""Exporters: where records go. The public interface for writing a sink of your own:

- :class:`Exporter` (and :class:`ExportResult`): what a destination implements;
- :class:`SinkConfig` / :class:`NetworkSinkConfig`: the base of a sink type's config model;
- :class:`Sink`: one sink type, registered through the entry-point group
  ``workflow_traces.sinks`` (see ``workflow_traces.exporters.registry``).

The config bases need pydantic and load on first use, so ``import workflow_traces`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workflow_traces.exporters.base import Exporter, ExportResult
from workflow_traces.exporters.registry import ENTRY_POINT_GROUP, Sink, SinkContext

if TYPE_CHECKING:
    from workflow_traces.exporters.config import NetworkSinkConfig, SinkConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExportResult",
    "Exporter",
    "NetworkSinkConfig",
    "Sink",
    "SinkConfig",
    "SinkContext",
]

_LAZY = {"SinkConfig", "NetworkSinkConfig"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from workflow_traces.exporters import config

    value = getattr(config, name)
    globals()[name] = value
    return value
