"""Validated configuration: one model per handler type, in a union discriminated on ``type``.

The same models check ``extras`` passed in code and the TRACE_* settings, so a typo fails the
same way from either. Errors come out as one ConfigError line per problem, naming the key, the
value given and what was expected; never pydantic's own dump.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

from ._errors import ConfigError

__all__ = [
    "HANDLER_TYPES",
    "ElasticsearchConfig",
    "FileConfig",
    "HandlerConfig",
    "RestAPIConfig",
    "SQLiteConfig",
    "TraceConfig",
    "format_validation_error",
    "validate_trace_config",
]

Overflow = Literal["block", "drop"]


class _Handler(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    buffer_size: int = Field(gt=0)
    flush_interval: float = Field(gt=0)
    #: Most records held in memory before the overflow policy applies.
    queue_size: int = Field(default=100_000, gt=0)
    #: When the buffer is full: "block" the caller up to block_timeout, or "drop" (counted).
    overflow: Overflow = "block"
    block_timeout: float = Field(default=1.0, ge=0)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "DEBUG"


class FileConfig(_Handler):
    type: Literal["file"] = "file"
    path: str = "./logs"
    buffer_size: int = Field(default=8192, gt=0)
    flush_interval: float = Field(default=1.0, gt=0)


class SQLiteConfig(_Handler):
    type: Literal["sqlite"] = "sqlite"
    path: str = "./logs/workflow_traces.db"
    buffer_size: int = Field(default=100, gt=0)
    flush_interval: float = Field(default=2.0, gt=0)


class RestAPIConfig(_Handler):
    type: Literal["restapi"] = "restapi"
    api_url: str
    api_key: SecretStr | None = None
    service_type: Literal["datadog", "grafana", "cloudwatch", "generic"] = "generic"
    buffer_size: int = Field(default=50, gt=0)
    flush_interval: float = Field(default=2.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0)


class ElasticsearchConfig(_Handler):
    type: Literal["elasticsearch"] = "elasticsearch"
    es_hosts: str | list[str] = "http://localhost:9200"
    index_name: str = "workflow-traces"
    username: str | None = None
    password: SecretStr | None = None
    buffer_size: int = Field(default=100, gt=0)
    flush_interval: float = Field(default=2.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0)


HandlerConfig = Annotated[
    FileConfig | SQLiteConfig | RestAPIConfig | ElasticsearchConfig,
    Field(discriminator="type"),
]
HANDLER_TYPES = ("file", "sqlite", "restapi", "elasticsearch")


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


_HANDLER_MODELS: dict[str, type[_Handler]] = {
    "file": FileConfig,
    "sqlite": SQLiteConfig,
    "restapi": RestAPIConfig,
    "elasticsearch": ElasticsearchConfig,
}


def _loc(loc: tuple[int | str, ...], style: str) -> str:
    if style == "env":
        return "TRACE_" + "__".join(str(p).upper() for p in loc)
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _closest(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _describe(err: Any, given: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(ctx.values()))
        return f"must be {sign} {bound}, got {given!r}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {given!r}"
    if kind == "missing":
        return "is required"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected a whole number, got {given!r}"
    if kind in ("float_parsing", "float_type"):
        return f"expected a number, got {given!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {given!r}"
    return f"{err['msg'].lower()}, got {given!r}"


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_validation_error(
    exc: ValidationError, data: Any, style: str = "key", prefix: tuple[int | str, ...] = ()
) -> str:
    """One line per problem: ``handlers[1].buffer_size: must be > 0, got -5``. With
    style="env" the key is the environment variable (``TRACE_HANDLERS__1__BUFFER_SIZE``).
    Secret values are never echoed."""
    lines = []
    for err in exc.errors(include_input=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        # A union member's name appears in the location: drop it.
        loc = tuple(p for p in loc if p not in _HANDLER_MODELS or not isinstance(p, str))
        given = _value_at(data, loc)
        field = str(loc[-1]) if loc else ""
        if field in ("api_key", "password") or "token" in field:
            given = "**********"
        if kind == "extra_forbidden":
            owner = _value_at(data, loc[:-1])
            model: type[BaseModel] = TraceConfig
            if isinstance(owner, dict) and owner.get("type") in _HANDLER_MODELS:
                model = _HANDLER_MODELS[owner["type"]]
            valid = sorted(model.model_fields)
            text = f"unknown key{_closest(field, valid)}; valid keys: {', '.join(valid)}"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            given = _value_at(data, (*loc, "type"))
            text = f"type: unknown handler type {given!r}; valid types: {', '.join(HANDLER_TYPES)}"
        else:
            text = _describe(err, given)
        lines.append(f"{_loc(prefix + loc, style)}: {text}")
    return "\n".join(lines)


def validate_trace_config(data: dict[str, Any], style: str = "key") -> TraceConfig:
    """Validate ``data`` into a TraceConfig, or raise one ConfigError listing each problem."""
    try:
        return TraceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, style)) from None


def validate_handler(data: dict[str, Any], style: str = "key") -> _Handler:
    """Validate one handler's keys (``type`` selects the model)."""
    kind = data.get("type")
    model = _HANDLER_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ConfigError(
            f"type: unknown handler type {kind!r}; valid types: {', '.join(HANDLER_TYPES)}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, style)) from None
