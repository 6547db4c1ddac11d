"""Turning validated configuration into handlers. Handlers themselves take plain arguments."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from workflow_traces.diagnostics import report
from workflow_traces.errors import ConfigError, TraceError
from workflow_traces.exporters import registry
from workflow_traces.settings.config import validate_handler

__all__ = [
    "attach_process",
    "build_child",
    "build_handler",
    "build_handlers",
    "check_requirements",
]


def check_requirements(cfg: Any) -> None:
    """Raise ConfigError when a package the sink needs is not installed, naming how to
    install it: a missing client is a configuration error, not an outage found later."""
    import importlib.util

    for module, install in cfg.requirements():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(
                f"type: {cfg.type!r} handlers need the {module} package, which is not "
                f"installed: {install}"
            )


def build_handler(
    cfg: Any,
    run_id: str,
    parent_run_id: str | None,
    extras: dict[str, Any],
    fail_silently: bool,
    settings: Any = None,
) -> logging.Handler:
    """One handler from one validated handler config, built by its sink type (see
    ``workflow_traces.exporters.registry``), with its worker's step before encoding (see
    :func:`attach_process`; ``settings``: the TraceSettings, read when None)."""
    handler = _build(cfg, run_id, parent_run_id, extras, fail_silently)
    try:
        attach_process(handler, cfg, settings)
    except BaseException:
        handler.close()
        raise
    return handler


def attach_process(handler: logging.Handler, cfg: Any, settings: Any = None) -> None:
    """Give the handler's channel the sink's sampling, rate limit and redaction (``redact*``,
    ``sample``, ``max_records_per_second``, with TRACE_REDACT_KEYS / TRACE_REDACT_PATTERNS
    where the sink sets none). Set before any record is logged to the handler."""
    channel = getattr(handler, "channel", None)
    if settings is None and cfg.redact and (cfg.redact_keys is None or cfg.redact_patterns is None):
        from workflow_traces.settings.model import TraceSettings

        settings = TraceSettings.load()
    process = cfg.record_process(
        getattr(settings, "redact_keys", None), getattr(settings, "redact_patterns", None)
    )
    if channel is None:
        if process is not None:
            report(
                f"process:{cfg.type}",
                f"workflow-traces: sink type {cfg.type!r} has no channel: its records are not "
                "redacted or sampled by workflow-traces",
                logging.WARNING,
            )
        return
    channel.process = process


def _build(
    cfg: Any,
    run_id: str,
    parent_run_id: str | None,
    extras: dict[str, Any],
    fail_silently: bool,
) -> logging.Handler:
    sink = registry.get(cfg.type)
    if sink is None:
        raise ConfigError(f"type: unknown handler config {type(cfg).__name__}")
    check_requirements(cfg)
    if sink.handler is not None:
        ctx = registry.SinkContext(run_id, parent_run_id, extras, fail_silently)
        handler: logging.Handler = registry.load(sink.handler)(cfg, ctx)
        return handler
    from workflow_traces.pipeline.handler import BufferedHandler

    return BufferedHandler(
        registry.load(sink.exporter)(cfg),
        run_id=run_id,
        parent_run_id=parent_run_id,
        extras=extras,
        batch_records=cfg.buffer_size,
        flush_interval=cfg.flush_interval,
        queue_size=cfg.queue_size,
        queue_bytes=cfg.queue_bytes,
        overflow=cfg.overflow,
        block_timeout=cfg.block_timeout,
        fail_silently=fail_silently,
        retry=cfg.retry_policy(),
        level=cfg.keywords()["level"],
    )


def build_handlers(
    run_id: str, parent_run_id: str | None, extras: dict[str, Any]
) -> tuple[str, bool, list[logging.Handler], dict[str, Any]]:
    """Resolve the TRACE_* settings with ``extras`` over them and build the handlers:
    (trace_type, fail_silently, handlers, extras with the settings' stamps added). A handler
    that cannot be built raises when fail_silently is False and is left out, with one ERROR
    report, when it is True. When every handler is left out, one ERROR report names each and
    its cause, and each is replaced by an ``UnavailableHandler``: ``health()`` lists it as
    unavailable and counts the trace's records as dropped. The settings are cached (see
    ``TraceSettings.load``)."""
    from workflow_traces.settings.effective import resolve
    from workflow_traces.settings.model import TraceSettings

    profile = extras.get("profile")
    settings = TraceSettings.load(profile=profile if isinstance(profile, str) else None)
    if settings.extra_loggers:
        from workflow_traces.core.extra_loggers import parse_logger_names, route_extra_loggers

        route_extra_loggers(parse_logger_names(settings.extra_loggers))
    eff = resolve(settings, extras)
    handlers: list[logging.Handler] = []
    left_out: list[tuple[int, Any, BaseException, str]] = []
    for index, cfg in enumerate(eff.handlers):
        try:
            handlers.append(
                build_handler(cfg, run_id, parent_run_id, eff.extras, eff.fail_silently, settings)
            )
        except (TraceError, OSError) as exc:
            if not eff.fail_silently:
                for built in handlers:  # stop the workers of those already built
                    built.close()
                if isinstance(exc, ConfigError):
                    raise ConfigError(_name_build_error(exc, index, eff)) from None
                raise
            left_out.append((index, cfg, exc, _name_build_error(exc, index, eff)))
    if left_out and not handlers:
        return eff.trace_type, eff.fail_silently, _unavailable(run_id, left_out), eff.extras
    for index, cfg, _, why in left_out:
        report(
            f"build:{cfg.type}",
            f"workflow-traces: left out handler {index} ({cfg.type}): {why}",
            logging.ERROR,
        )
    return eff.trace_type, eff.fail_silently, handlers, eff.extras


def _unavailable(
    run_id: str, left_out: list[tuple[int, Any, BaseException, str]]
) -> list[logging.Handler]:
    """Every configured sink was left out: one report naming each, and their stand-ins."""
    from workflow_traces.settings.unavailable import UnavailableHandler

    causes = "; ".join(f"handler {i} ({cfg.type}): {why}" for i, cfg, _, why in left_out)
    report(
        f"no-sinks:{run_id}",
        f"workflow-traces: no sink of run {run_id!r} could be built, its records are dropped: "
        f"{causes}",
        logging.ERROR,
    )
    return [
        UnavailableHandler(f"{cfg.type}:{_label(cfg)}", exc, run_id) for _, cfg, exc, _ in left_out
    ]


def _label(cfg: Any) -> str:
    """What to call a left-out sink: its config's ``describe()`` without the type."""
    text = str(cfg.describe())
    return text.removeprefix(f"{cfg.type} ") or cfg.type


def _name_build_error(exc: BaseException, index: int, eff: Any) -> str:
    """``path: cannot create ...`` named after what set the path: ``TRACE_HANDLERS__0__PATH``,
    ``handlers[0].path`` or, for a single trace, ``path`` / ``TRACE_PATH``."""
    text = str(exc)
    head, sep, rest = text.partition(": ")
    if sep and _names_an_argument(head, eff.handlers[index]):
        return text  # ``run_id: ...``: about get_trace's argument, not a handler key
    if not (sep and head.isidentifier()):
        return text if eff.trace_type != "multi" else f"handlers[{index}]: {text}"
    loc = ("handlers", index, head)
    origin = eff.origins.get(loc)
    if origin is not None and origin.source != "default":
        where = f" (set in {origin.file})" if origin.file else ""
        return f"{origin.name(loc)}: {rest}{where}"
    return text if eff.trace_type != "multi" else f"handlers[{index}].{text}"


def _names_an_argument(head: str, cfg: Any) -> bool:
    """Whether an error's ``head:`` names get_trace's own argument (run_id, parent_run_id)
    rather than a key of the handler's config."""
    return head in ("run_id", "parent_run_id") and head not in type(cfg).model_fields


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
                head = str(exc).partition(": ")[0]
                if _names_an_argument(head, cfg):
                    raise ConfigError(str(exc)) from None
                raise ConfigError(f"handlers[{index}].{exc}") from None
            raise
        report(
            f"build:{cfg.type}",
            f"workflow-traces: left out handler {index} ({cfg.type}): {exc}",
            logging.ERROR,
        )
        return None
