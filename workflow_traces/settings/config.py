"""Validated configuration: one model per sink type (from the sink registry,
``workflow_traces.exporters.registry``), in a union discriminated on ``type``.

The same models check ``extras`` passed in code and the TRACE_* settings, so a typo fails the
same way from either. Errors come out as one ConfigError line per problem, naming the key, the
value given and what was expected; never pydantic's own dump.

The built-in models live in ``settings.sinks`` and are re-exported here.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from workflow_traces.errors import ConfigError
from workflow_traces.exporters import registry
from workflow_traces.exporters.config import SinkConfig
from workflow_traces.exporters.registry import config_model
from workflow_traces.settings.sinks import (
    ElasticsearchConfig,
    FileConfig,
    MemoryConfig,
    OpenSearchConfig,
    RestAPIConfig,
    SQLiteConfig,
)

__all__ = [
    "DEFAULT_PATH_SETTINGS",
    "HANDLER_TYPES",
    "ElasticsearchConfig",
    "EnvStyle",
    "FileConfig",
    "HandlerConfig",
    "KeyStyle",
    "MemoryConfig",
    "OpenSearchConfig",
    "RestAPIConfig",
    "SQLiteConfig",
    "TraceConfig",
    "complex_fields",
    "format_validation_error",
    "handler_model",
    "is_secret_key",
    "secret_fields",
    "validate_handler",
    "validate_trace_config",
]


def _handler_union() -> Any:
    """The union of every registered sink type's config model, discriminated on ``type``."""
    models = tuple(config_model(sink) for sink in registry.sinks().values())
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


#: The registered sink types' config models: ``{"type": ..., ...}`` validates into one of them.
#: (mypy sees their base: the members are known only once the registry is read.)
if TYPE_CHECKING:
    HandlerConfig = SinkConfig
else:
    HandlerConfig = _handler_union()

#: The sink type names, in listing order.
HANDLER_TYPES = registry.types()
_HANDLER_MODELS: dict[str, type[SinkConfig]] = {
    kind: config_model(sink) for kind, sink in registry.sinks().items()
}

#: Sink type -> the TraceSettings field its handlers take ``path`` from when they give none
#: (``{"file": "path", "sqlite": "sqlite_path"}``: TRACE_PATH, TRACE_SQLITE_PATH).
DEFAULT_PATH_SETTINGS: dict[str, str] = {
    kind: model.default_path_setting
    for kind, model in _HANDLER_MODELS.items()
    if model.default_path_setting is not None
}


class TraceConfig(BaseModel):
    """What ``get_trace`` builds: the trace type, the handlers and the stamps."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    trace_type: Literal["file", "sqlite", "multi"] = "file"
    handlers: list[HandlerConfig] = Field(default_factory=list)
    fail_silently: bool = True
    workflow_name: str | None = None
    job_name: str | None = None
    stage_name: str | None = None
    environment: str | None = None


Loc = tuple[int | str, ...]

#: Keys whose values are never shown, whatever their type (plus every SecretStr field).
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "auth", "credential", "header")


def is_secret_key(key: object) -> bool:
    """Whether a value under ``key`` must never be shown."""
    if not isinstance(key, str):
        return False
    low = key.lower()
    return low in _SECRET_FIELDS or any(word in low for word in _SECRET_WORDS)


def _mentions(annotation: Any, kinds: tuple[Any, ...]) -> bool:
    if annotation in kinds or get_origin(annotation) in kinds:
        return True
    return any(_mentions(arg, kinds) for arg in get_args(annotation))


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that hold a SecretStr."""
    return frozenset(
        name for name, f in model.model_fields.items() if _mentions(f.annotation, (SecretStr,))
    )


def complex_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that take a list or a dict (given as JSON in a variable)."""
    return frozenset(
        name
        for name, f in model.model_fields.items()
        if _mentions(f.annotation, (list, dict, tuple, set))
    )


def handler_model(kind: object) -> type[SinkConfig] | None:
    """The model for handler type ``kind``, or None."""
    return _HANDLER_MODELS.get(kind) if isinstance(kind, str) else None


_SECRET_FIELDS = frozenset(f for m in _HANDLER_MODELS.values() for f in secret_fields(m))


class KeyStyle:
    """How an error names where it is and the value given: keys as in ``extras``
    (``handlers[1].buffer_size``). Subclasses name environment variables instead."""

    def __init__(self, prefix: Loc = ()) -> None:
        self.prefix = prefix

    def name(self, loc: Loc) -> str:
        out = ""
        for part in self.prefix + loc:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or "extras"

    def suggest(self, bad: Loc, good: str) -> str:
        """How to write ``good``, suggested for the unknown key at ``bad``, in this style."""
        return repr(good)

    def show(self, loc: Loc, value: Any) -> str:
        return repr(value)

    def where(self, loc: Loc) -> str:
        """Where the value at ``loc`` was set, when that is not obvious from its name."""
        return ""


class EnvStyle(KeyStyle):
    """Names as environment variables: ``TRACE_HANDLERS__1__BUFFER_SIZE``."""

    def name(self, loc: Loc) -> str:
        return "TRACE_" + "__".join(str(p).upper() for p in self.prefix + loc)

    def suggest(self, bad: Loc, good: str) -> str:
        return self.name((*bad[:-1], good))


def _closest(word: str, choices: list[str], cutoff: float = 0.6) -> str | None:
    match = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=cutoff)
    return match[0] if match else None


def _describe(err: Any, given: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "> 0", not "> 0.0"
        return f"must be {sign} {bound}, got {given}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {given}"
    if kind == "missing":
        return "is required"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected a whole number, got {given}"
    if kind in ("float_parsing", "float_type"):
        return f"expected a number, got {given}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {given}"
    if kind in ("string_type", "string_sub_type"):
        return f"expected text, got {given}"
    if kind == "list_type":
        return f"expected a list, got {given}"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"expected an object with a 'type' key, got {given}"
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}, got {given}"


def _clean_loc(loc: Loc) -> Loc:
    # A discriminated union puts the member's tag after the list index: drop it.
    out: list[int | str] = []
    for i, part in enumerate(loc):
        if (
            i >= 2
            and isinstance(part, str)
            and part in _HANDLER_MODELS
            and isinstance(loc[i - 1], int)
            and loc[i - 2] == "handlers"
        ):
            continue
        out.append(part)
    return tuple(out)


def _model_at(data: Any, loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model whose keys are valid at ``loc`` (the owner of an unknown key)."""
    owner = _value_at(data, loc)
    if isinstance(owner, dict) and "type" in owner and (m := handler_model(owner["type"])):
        return m
    return root if not loc else None


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_validation_error(
    exc: ValidationError,
    data: Any,
    style: str | KeyStyle = "key",
    prefix: Loc = (),
    root: type[BaseModel] | None = None,
) -> str:
    """One line per problem, naming the key, the value given and what was expected:
    ``handlers[1].buffer_size: must be > 0, got -5``. With style="env" (or an EnvStyle) the
    key is the environment variable: ``TRACE_HANDLERS__1__BUFFER_SIZE: must be > 0, got -5``.
    An unknown key gets the closest valid one suggested; secret values are never shown."""
    if isinstance(style, str):
        style = EnvStyle(prefix) if style == "env" else KeyStyle(prefix)
    root = root or TraceConfig
    lines = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err["loc"]))
        kind = err["type"]
        field = loc[-1] if loc else ""
        value = err.get("input")
        given = "**********" if is_secret_key(field) else style.show(loc, value)
        if kind == "extra_forbidden":
            model = _model_at(data, loc[:-1], root)
            valid = sorted(k for k in (model.model_fields if model else {}) if k != "type")
            near = _closest(str(field), valid)
            hint = f" (did you mean {style.suggest(loc, near)}?)" if near else ""
            listing = f"; valid keys: {', '.join(valid)}" if valid and loc[:-1] else ""
            text = f"unknown key{hint}{listing}"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "type")
            tag = value.get("type") if isinstance(value, dict) else None
            what = "is required" if tag is None else f"unknown handler type {style.show(loc, tag)}"
            text = f"{what}; valid types: {', '.join(HANDLER_TYPES)}"
        else:
            text = _describe(err, given)
        lines.append(f"{style.name(loc)}: {text}{style.where(loc)}")
    return "\n".join(dict.fromkeys(lines))


def validate_trace_config(data: dict[str, Any], style: str | KeyStyle = "key") -> TraceConfig:
    """Validate ``data`` into a TraceConfig, or raise one ConfigError listing each problem."""
    try:
        return TraceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, style)) from None


def validate_handler(data: dict[str, Any], style: str | KeyStyle = "key") -> SinkConfig:
    """Validate one handler's keys (``type`` selects the model)."""
    kind = data.get("type")
    model = handler_model(kind)
    if isinstance(style, str):
        style = EnvStyle() if style == "env" else KeyStyle()
    if model is None:
        what = "is required" if kind is None else f"unknown handler type {kind!r}"
        raise ConfigError(
            f"{style.name(('type',))}: {what}; valid types: {', '.join(HANDLER_TYPES)}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, style, root=model)) from None
