"""Turning validated configuration into handlers. Handlers themselves take plain arguments."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._config import (
    ElasticsearchConfig,
    FileConfig,
    RestAPIConfig,
    SQLiteConfig,
    validate_handler,
    validate_trace_config,
)
from ._diagnostics import report
from ._errors import ConfigError, TraceError

__all__ = ["build_child", "build_handler", "build_handlers"]

_SINGLE: dict[str, type[FileConfig] | type[SQLiteConfig]] = {
    "file": FileConfig,
    "sqlite": SQLiteConfig,
}


def build_handler(
    cfg: Any,
    run_id: str,
    parent_run_id: str | None,
    extras: dict[str, Any],
    fail_silently: bool,
) -> logging.Handler:
    """One handler from one validated handler config."""
    common = {
        "buffer_size": cfg.buffer_size,
        "flush_interval": cfg.flush_interval,
        "queue_size": cfg.queue_size,
        "overflow": cfg.overflow,
        "block_timeout": cfg.block_timeout,
        "fail_silently": fail_silently,
        "level": logging.getLevelName(cfg.level),
    }
    if isinstance(cfg, FileConfig):
        from ._file import WorkflowFileHandler

        return WorkflowFileHandler(run_id, parent_run_id, cfg.path, extras, **common)
    if isinstance(cfg, SQLiteConfig):
        from ._sqlite import SQLiteHandler

        return SQLiteHandler(run_id, parent_run_id, cfg.path, extras, **common)
    if isinstance(cfg, RestAPIConfig | ElasticsearchConfig):
        try:
            from . import _network  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            raise ConfigError(
                f"type: {cfg.type!r} handlers are not available in this build ({exc})"
            ) from None
        handler: logging.Handler = _network.build(cfg, run_id, parent_run_id, extras, common)
        return handler
    raise ConfigError(f"type: unknown handler config {type(cfg).__name__}")


def build_handlers(
    run_id: str, parent_run_id: str | None, extras: dict[str, Any]
) -> tuple[str, bool, list[logging.Handler], dict[str, Any]]:
    """Validate ``extras`` and build its handlers: (trace_type, fail_silently, handlers,
    extras as merged). A handler that cannot be built raises when fail_silently is False and is
    left out, with a warning, when it is True."""
    top = {k: v for k, v in extras.items() if k != "handlers"}
    if "handlers" in extras:
        top["handlers"] = extras["handlers"]
    trace_type = extras.get("trace_type", "file")
    single: type[FileConfig] | type[SQLiteConfig] | None = (
        _SINGLE.get(trace_type) if isinstance(trace_type, str) else None
    )
    if single is not None:
        # The single types take their handler's keys at the top level of extras.
        keys = {k: extras[k] for k in single.model_fields if k in extras and k != "type"}
        handler_cfgs: list[Any] = [validate_handler({"type": trace_type, **keys})]
        top.pop("handlers", None)
        config = validate_trace_config({k: v for k, v in top.items() if k not in keys})
    else:
        config = validate_trace_config(top)
        handler_cfgs = list(config.handlers)
        if not handler_cfgs:
            raise ConfigError("handlers: trace_type 'multi' needs at least one handler, got []")
    handlers: list[logging.Handler] = []
    for index, cfg in enumerate(handler_cfgs):
        try:
            handlers.append(build_handler(cfg, run_id, parent_run_id, extras, config.fail_silently))
        except (TraceError, OSError) as exc:
            if not config.fail_silently:
                if isinstance(exc, ConfigError) and single is None:
                    raise ConfigError(f"handlers[{index}].{exc}") from None
                raise
            report(
                f"build:{cfg.type}",
                f"workflow-traces: left out handler {index} ({cfg.type}): {exc}",
            )
    return config.trace_type, config.fail_silently, handlers, extras


def build_child(
    data: Mapping[str, Any],
    index: int,
    run_id: str,
    parent_run_id: str | None,
    extras: dict[str, Any],
    fail_silently: bool,
) -> logging.Handler | None:
    """A MultiHandler child from a handler config dict (``{"type": "file", ...}``), as given to
    ``MultiHandler(handlers=[...])`` or by ``logging.config.dictConfig``. Invalid keys raise
    ConfigError naming ``handlers[index]``; a handler that cannot be built raises when
    fail_silently is False, and is left out (None), with a warning, when it is True."""
    try:
        cfg: Any = validate_handler(dict(data))
    except ConfigError as exc:
        lines = str(exc).splitlines()
        raise ConfigError("\n".join(f"handlers[{index}].{line}" for line in lines)) from None
    try:
        return build_handler(cfg, run_id, parent_run_id, extras, fail_silently)
    except (TraceError, OSError) as exc:
        if not fail_silently:
            if isinstance(exc, ConfigError):
                raise ConfigError(f"handlers[{index}].{exc}") from None
            raise
        report(
            f"build:{cfg.type}",
            f"workflow-traces: left out handler {index} ({cfg.type}): {exc}",
        )
        return None
