"""The sink registry: every sink type, in one place.

A sink type is one exporter (or handler) module plus one config model, named by a :class:`Sink`.
Everything else comes from here: the validation of ``{"type": ..., ...}`` objects (the union of
the config models, discriminated on ``type``), the handler factory, ``config check``'s probe, the
settings' key tables and the README's.

Built-in types are listed in :data:`BUILTIN`. Other packages add theirs through the entry-point
group ``workflow_traces.sinks`` (the way pytest plugins and OpenTelemetry exporters plug in)::

    [project.entry-points."workflow_traces.sinks"]
    csv = "csv_sink:SINK"          # the name is the sink's type; SINK is a Sink

Entry points are read, and their modules imported, the first time configuration is validated,
never by ``import workflow_traces``. Modules named by text (``"package.module:Name"``) are
imported only when that sink type is used.

Adding a built-in sink type:

1. its exporter (and, if it needs one, its handler class with a ``from_config(cfg, ctx)``
   classmethod) in a module or subpackage of ``workflow_traces.exporters``;
2. its config model in ``workflow_traces.settings.sinks``: a subclass of ``SinkConfig`` or
   ``NetworkSinkConfig`` with ``type: Literal["<name>"] = "<name>"``, each key a
   ``Field(description=...)``, and the hooks that apply (``describe``, ``endpoints``,
   ``verify_tls``, ``requirements``, ``store_location``, ``remove_run``);
3. one ``Sink`` entry in :data:`BUILTIN` below;
4. in the README, an empty ``<!-- keys:<name> -->`` / ``<!-- /keys -->`` block, filled by
   ``python -m workflow_traces.settings.keytables README.md``.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflow_traces.diagnostics import report

if TYPE_CHECKING:
    from workflow_traces.exporters.base import Exporter
    from workflow_traces.exporters.config import SinkConfig

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Sink",
    "SinkContext",
    "config_model",
    "get",
    "load",
    "sinks",
    "types",
]

#: The entry-point group third-party sink types register under.
ENTRY_POINT_GROUP = "workflow_traces.sinks"


@dataclass(frozen=True)
class SinkContext:
    """What a handler is built for: the run, the trace's extras and its failure policy."""

    run_id: str
    parent_run_id: str | None
    extras: dict[str, Any]
    fail_silently: bool


@dataclass(frozen=True)
class Sink:
    """One sink type.

    - ``type``: the name users give as ``{"type": ...}``.
    - ``config``: its config model, a subclass of ``SinkConfig`` (or ``NetworkSinkConfig``)
      whose ``type`` field is ``Literal[<type>]``; or its ``"module:Name"``.
    - ``exporter``: a callable taking the validated config and returning an ``Exporter``; the
      factory (``settings.factory``) wraps it in a ``BufferedHandler`` (its own buffer and
      worker) set up from the config's common keys and ``retry_policy()``. Or:
    - ``handler``: a callable taking the validated config and a :class:`SinkContext` and
      returning a ``logging.Handler``, for sinks with a handler class of their own.
    - ``summary``: one line for listings.
    """

    type: str
    config: builtins.type[SinkConfig] | str
    exporter: Callable[[Any], Exporter] | str | None = None
    handler: Callable[[Any, SinkContext], logging.Handler] | str | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        if (self.exporter is None) == (self.handler is None):
            raise ValueError(f"sink type {self.type!r}: give exporter or handler (one of them)")


_CONFIGS = "workflow_traces.settings.sinks"

#: The built-in sink types, in the order listings show them.
BUILTIN: tuple[Sink, ...] = (
    Sink(
        "file",
        f"{_CONFIGS}:FileConfig",
        handler="workflow_traces.exporters.file:WorkflowFileHandler.from_config",
        summary="one folder per run: JSON lines, and readable stdout/stderr text",
    ),
    Sink(
        "sqlite",
        f"{_CONFIGS}:SQLiteConfig",
        handler="workflow_traces.exporters.sqlite.handler:SQLiteHandler.from_config",
        summary="one SQLite database, one row per record",
    ),
    Sink(
        "restapi",
        f"{_CONFIGS}:RestAPIConfig",
        handler="workflow_traces.exporters.rest.handler:RestAPIHandler.from_config",
        summary="Datadog, Grafana Loki, CloudWatch Logs, generic JSON/NDJSON or OTLP over HTTP",
    ),
    Sink(
        "elasticsearch",
        f"{_CONFIGS}:ElasticsearchConfig",
        handler="workflow_traces.exporters.elasticsearch.handler:ElasticsearchHandler.from_config",
        summary="Elasticsearch bulk writes, ECS documents",
    ),
    Sink(
        "opensearch",
        f"{_CONFIGS}:OpenSearchConfig",
        handler="workflow_traces.exporters.elasticsearch.opensearch:OpenSearchHandler.from_config",
        summary="OpenSearch bulk writes through opensearch-py, the Elasticsearch sink's documents",
    ),
    Sink(
        "memory",
        f"{_CONFIGS}:MemoryConfig",
        exporter="workflow_traces.testing.memory:MemoryExporter.from_config",
        summary="records kept in memory, read back with workflow_traces.testing.memory_sink",
    ),
)

_lock = threading.RLock()  # a plugin that reads the registry while it loads must not hang
_sinks: dict[str, Sink] | None = None


def load(ref: Any) -> Any:
    """The object ``ref`` names (``"package.module:Name.attr"``), or ``ref`` itself."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _from_entry_points() -> list[Sink]:
    from importlib.metadata import entry_points

    found: list[Sink] = []
    # The same distribution found twice on sys.path lists its entry points twice: once is enough.
    unique = {(ep.name, ep.value): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for ep in sorted(unique.values(), key=lambda e: e.name):
        where = f"entry point {ep.name!r} ({ep.value})"
        try:
            sink = ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            report(
                f"sink-plugin:{ep.name}",
                f"workflow-traces: sink type {ep.name!r} left out: cannot load {where}: "
                f"{type(exc).__name__}: {exc}",
                logging.ERROR,
            )
            continue
        problem = _check_plugin(ep.name, sink)
        if problem:
            report(
                f"sink-plugin:{ep.name}",
                f"workflow-traces: sink type {ep.name!r} left out: {where} {problem}",
                logging.ERROR,
            )
            continue
        found.append(sink)
    return found


def _check_plugin(name: str, sink: Any) -> str:
    """What is wrong with a sink type an entry point gave (empty when nothing is)."""
    from workflow_traces.exporters.config import SinkConfig

    if not isinstance(sink, Sink) or sink.type != name:
        return f"must name a workflow_traces.exporters.Sink whose type is {name!r}"
    try:
        model = config_model(sink)
    except Exception as exc:
        return f"names a config model that cannot be loaded: {type(exc).__name__}: {exc}"
    field = model.model_fields.get("type") if isinstance(model, type) else None
    if not (isinstance(model, type) and issubclass(model, SinkConfig)) or field is None:
        return "must give a config model that subclasses workflow_traces.exporters.SinkConfig"
    if field.default != name:
        return f"has a config model whose type field is not Literal[{name!r}] = {name!r}"
    return ""


def sinks() -> dict[str, Sink]:
    """Every sink type by name: the built-in ones, then those of installed packages."""
    global _sinks
    with _lock:
        if _sinks is None:
            table = {sink.type: sink for sink in BUILTIN}
            for sink in _from_entry_points():
                if sink.type in table:
                    report(
                        f"sink-plugin:{sink.type}",
                        f"workflow-traces: sink type {sink.type!r} from an entry point is "
                        "left out: a sink type of that name is already registered",
                        logging.ERROR,
                    )
                    continue
                table[sink.type] = sink
            _sinks = table
        return _sinks


def types() -> tuple[str, ...]:
    """The sink type names, in listing order."""
    return tuple(sinks())


def get(kind: object) -> Sink | None:
    """The sink type named ``kind``, or None."""
    return sinks().get(kind) if isinstance(kind, str) else None


def config_model(sink: Sink) -> type[SinkConfig]:
    """``sink``'s config model, imported now if it was named by text."""
    model: type[SinkConfig] = load(sink.config)
    return model
