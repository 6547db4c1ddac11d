"""What ``get_trace`` builds: the TRACE_* settings with ``extras`` over them.

``extras`` win over every other source. They are validated by the same models as the settings,
so a typo fails the same way from code as from the environment (named as a key,
``handlers[1].buffer_size``, rather than as a variable).

- ``trace_type``: extras, else TRACE_TRACE_TYPE, else "multi" when handlers are given (in
  extras or in TRACE_HANDLERS), else "file".
- A single "file"/"sqlite" trace takes its handler's keys from the top level of extras, else
  from TRACE_PATH (file) / TRACE_SQLITE_PATH (sqlite) and TRACE_BUFFER_SIZE and the like.
- "multi": ``extras["handlers"]`` replaces TRACE_HANDLERS as a whole. A file or SQLite handler
  without a path gets TRACE_PATH / TRACE_SQLITE_PATH.
- ``fail_silently`` and the stamps (workflow/job/stage name, environment): extras, else
  settings. The stamps set in settings are added to the trace's extras.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workflow_traces.core.stdlib import SINGLE_KEYS
from workflow_traces.errors import ConfigError
from workflow_traces.settings.config import (
    DEFAULT_PATH_SETTINGS,
    KeyStyle,
    Loc,
    validate_handler,
    validate_trace_config,
)
from workflow_traces.settings.model import TraceSettings
from workflow_traces.settings.sources import DEFAULT, EXTRAS, Origin

__all__ = ["SINGLE_KEYS", "STAMPS", "Effective", "resolve"]

STAMPS = ("workflow_name", "job_name", "stage_name", "environment")
_TOP = ("trace_type", "fail_silently", *STAMPS)
_LOCATING = ("profile", "path", "sqlite_path", "env_file", "secrets_dir")
#: Settings every sink takes unless it sets its own (read in ``settings.factory``).
_SINK_DEFAULTS = ("redact_keys", "redact_patterns")
#: Keys that configure tracing; an extras key very close to one of them is taken for a typo.
_CONFIG_KEYS = (*_TOP, "handlers", "path", *SINGLE_KEYS, "profile")
_TYPO_CUTOFF = 0.88
_DEFAULT_PATH_KEY = DEFAULT_PATH_SETTINGS


@dataclass
class Effective:
    """The resolved configuration: what ``get_trace`` builds and ``config show`` prints."""

    trace_type: str
    fail_silently: bool
    handlers: list[Any]
    extras: dict[str, Any]
    settings: TraceSettings
    origins: dict[Loc, Origin] = field(default_factory=dict)

    def origin(self, loc: Loc) -> Origin:
        return self.origins.get(loc) or Origin(DEFAULT, "", loc)

    def entries(self) -> Iterator[tuple[Loc, Any]]:
        """Every effective value, top level first, then each handler's keys."""
        values = {
            "trace_type": self.trace_type,
            "fail_silently": self.fail_silently,
            **{
                k: getattr(self.settings, k) if k not in self.extras else self.extras[k]
                for k in STAMPS
            },
            **{k: getattr(self.settings, k) for k in (*_LOCATING, *_SINK_DEFAULTS)},
        }
        for key, value in values.items():
            yield (key,), value
        for index, cfg in enumerate(self.handlers):
            dumped = cfg.model_dump()
            for key in ("type", *sorted(k for k in dumped if k != "type")):
                yield ("handlers", index, key), getattr(cfg, key)


def _extras_origin(loc: Loc) -> Origin:
    return Origin(EXTRAS, KeyStyle().name(loc), loc, raw=False)


def _check_typos(extras: dict[str, Any]) -> None:
    problems = []
    for key in extras:
        if not isinstance(key, str) or key in _CONFIG_KEYS or len(key) < 6:
            continue
        near = difflib.get_close_matches(key, _CONFIG_KEYS, n=1, cutoff=_TYPO_CUTOFF)
        if near:
            problems.append(f"{key}: unknown key (did you mean {near[0]!r}?)")
    if problems:
        raise ConfigError("\n".join(problems))


def _with_default_path(item: Any, settings: TraceSettings) -> Any:
    if isinstance(item, dict) and "path" not in item:
        key = _DEFAULT_PATH_KEY.get(item.get("type"))  # type: ignore[arg-type]
        if key is not None:
            return {**item, "path": getattr(settings, key)}
    return item


def resolve(settings: TraceSettings, extras: dict[str, Any] | None = None) -> Effective:
    """The configuration ``get_trace(extras=extras)`` builds over ``settings``. Raises one
    ConfigError listing each problem in extras."""
    extras = dict(extras or {})
    _check_typos(extras)
    s_origins = settings.origins
    origins: dict[Loc, Origin] = {}

    def origin_of(key: str) -> Origin | None:
        return _extras_origin((key,)) if key in extras else s_origins.get((key,))

    given = {k: extras[k] for k in _TOP if k in extras}
    if "handlers" in extras:
        raw = extras["handlers"]
        if isinstance(raw, list | tuple):
            given["handlers"] = [_with_default_path(item, settings) for item in raw]
        else:
            given["handlers"] = raw
    top = validate_trace_config(given)

    if "trace_type" in extras:
        trace_type: str = top.trace_type
    elif settings.trace_type is not None:
        trace_type = settings.trace_type
    else:
        has_handlers = bool(extras["handlers"]) if "handlers" in extras else bool(settings.handlers)
        trace_type = "multi" if has_handlers else "file"
    fail_silently = top.fail_silently if "fail_silently" in extras else settings.fail_silently
    for key in _TOP:
        if (o := origin_of(key)) is not None:
            origins[(key,)] = o
    if ("trace_type",) not in origins and trace_type == "multi":
        origins[("trace_type",)] = Origin(DEFAULT, "handlers are set", ("trace_type",))
    for key in (*_LOCATING, *_SINK_DEFAULTS):
        if (o := s_origins.get((key,))) is not None:
            origins[(key,)] = o

    handlers: list[Any]
    if trace_type in _DEFAULT_PATH_KEY:
        path_key = _DEFAULT_PATH_KEY[trace_type]
        keys: dict[str, Any] = {"type": trace_type}
        keys["path"] = extras["path"] if "path" in extras else getattr(settings, path_key)
        for key in SINGLE_KEYS:
            if key in extras:
                keys[key] = extras[key]
            elif getattr(settings, key) is not None:
                keys[key] = getattr(settings, key)
        handlers = [validate_handler(keys)]
        if (o := origins.get(("trace_type",))) is not None:
            origins[("handlers", 0, "type")] = o
        path_origin = origin_of("path") if "path" in extras else s_origins.get((path_key,))
        origins[("handlers", 0, "path")] = path_origin or _default_of(path_key)
        for key in SINGLE_KEYS:
            if (o := origin_of(key)) is not None:
                origins[("handlers", 0, key)] = o
    elif "handlers" in extras:
        handlers = list(top.handlers)
        for index, item in enumerate(extras["handlers"]):
            for key in item if isinstance(item, dict) else ():
                origins[("handlers", index, key)] = _extras_origin(("handlers", index, key))
            _default_path_origin(origins, s_origins, index, item)
    else:
        handlers = list(settings.handlers)
        for loc, o in s_origins.items():
            if loc[:1] == ("handlers",):
                origins[loc] = o
        for index, cfg in enumerate(handlers):
            set_keys = {loc[2] for loc in s_origins if loc[:2] == ("handlers", index)}
            _default_path_origin(
                origins, s_origins, index, {**dict.fromkeys(set_keys), "type": cfg.type}
            )
    if trace_type == "multi" and not handlers:
        raise ConfigError(
            "handlers: trace_type 'multi' needs at least one handler; give extras['handlers'], "
            "TRACE_HANDLERS (a JSON list) or TRACE_HANDLERS__0__TYPE and its keys"
        )

    merged = {k: getattr(settings, k) for k in STAMPS if getattr(settings, k) is not None}
    merged.update(extras)
    return Effective(trace_type, fail_silently, handlers, merged, settings, origins)


def _default_path_origin(
    origins: dict[Loc, Origin], s_origins: dict[Loc, Origin], index: int, item: Any
) -> None:
    """A handler that gave no path takes TRACE_PATH / TRACE_SQLITE_PATH: say so."""
    if not isinstance(item, dict) or "path" in item:
        return
    key = _DEFAULT_PATH_KEY.get(item.get("type"))  # type: ignore[arg-type]
    if key is not None:
        origins[("handlers", index, "path")] = s_origins.get((key,)) or _default_of(key)


def _default_of(key: str) -> Origin:
    return Origin(DEFAULT, f"TRACE_{key.upper()}", ("handlers",))
