"""Validated configuration: one model per handler type, in a union discriminated on ``type``.

The same models check ``extras`` passed in code and the TRACE_* settings, so a typo fails the
same way from either. Errors come out as one ConfigError line per problem, naming the key, the
value given and what was expected; never pydantic's own dump.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from workflow_traces.errors import ConfigError

__all__ = [
    "HANDLER_TYPES",
    "ElasticsearchConfig",
    "EnvStyle",
    "FileConfig",
    "HandlerConfig",
    "KeyStyle",
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

Overflow = Literal["block", "drop"]


class _Handler(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    buffer_size: int = Field(gt=0)
    flush_interval: float = Field(gt=0)
    #: Most records held in memory before the overflow policy applies.
    queue_size: int = Field(default=200_000, gt=0)
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
    """A REST sink (``exporters.rest.handler``). Keys that only one service uses say so."""

    type: Literal["restapi"] = "restapi"
    #: Which service's payload and auth: datadog, grafana (Loki), cloudwatch, generic.
    service_type: Literal["datadog", "grafana", "cloudwatch", "generic"] = "generic"
    #: Where to POST. Required except for cloudwatch (https://logs.<region>.amazonaws.com).
    #: A bare host gets the service's path: /api/v2/logs, /loki/api/v1/push, /v1/logs (otlp).
    api_url: str | None = Field(default=None, validate_default=True, repr=False)
    #: datadog: DD-API-KEY; grafana: bearer token (or the basic-auth password with username);
    #: generic: bearer token. Not used by cloudwatch.
    api_key: SecretStr | None = None
    buffer_size: int = Field(default=50, gt=0)
    flush_interval: float = Field(default=2.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    #: A network sink drops (counted and reported) rather than block the caller when full.
    overflow: Overflow = "drop"
    #: generic only: "json" (one JSON array), "ndjson", or "otlp" (OTLP/HTTP JSON logs).
    format: Literal["json", "ndjson", "otlp"] = "json"
    #: Gzip request bodies. Unset: on for datadog, grafana and otlp, off for generic json and
    #: ndjson; cloudwatch does not take gzip.
    gzip: bool | None = None
    #: Extra HTTP headers sent with every request (values are treated as secrets).
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    #: Static labels: Loki stream labels, Datadog tags, OTLP resource attributes.
    labels: dict[str, str] = Field(default_factory=dict)
    #: The service name: Datadog ``service``, Loki label ``service``, OTLP ``service.name``.
    service: str = "workflow-traces"
    #: Verify HTTPS certificates. Turning this off must be explicit, and is reported.
    verify: bool = True
    #: A CA bundle (PEM file) to verify the service's certificate with.
    ca_certs: str | None = None
    #: grafana (or generic): HTTP basic auth.
    username: str | None = None
    password: SecretStr | None = None
    #: grafana: the tenant, sent as X-Scope-OrgID.
    org_id: str | None = None
    #: cloudwatch: the AWS region (default: from api_url, then AWS_REGION/AWS_DEFAULT_REGION).
    region: str | None = None
    log_group: str = "workflow-traces"
    #: cloudwatch: the stream name; may use {run_id}, {host} and {process}.
    log_stream: str = "{run_id}"
    #: cloudwatch: static credentials (default: botocore's chain: env, profile, role).
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    #: Keep records that cannot be sent now on disk here, and send them (oldest first) when
    #: the service is back, also after a restart. Unset: they wait in memory only.
    spool_dir: str | None = None
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    #: Backoff between retries (doubling, jittered) and its cap, also the cap between probes
    #: of a service whose circuit breaker is open.
    retry_base_delay: float = Field(default=0.5, gt=0)
    retry_max_delay: float = Field(default=30.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        service = info.data.get("service_type", "generic")
        if value is None:
            if service == "cloudwatch":
                return None
            raise PydanticCustomError("rest_url", f"is required for service_type {service!r}")
        scheme, sep, rest = value.partition("://")
        if scheme.lower() not in ("http", "https") or not sep or not rest.strip("/"):
            raise PydanticCustomError("rest_url", "expected an http:// or https:// URL")
        return value

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # Each format's own rules for label names (Loki, OTLP, Datadog): see exporters.rest.labels.
        from workflow_traces.exporters.rest.labels import label_name_problem

        service = info.data.get("service_type", "generic")
        fmt = info.data.get("format", "json")
        for key in value:
            problem = label_name_problem(service, fmt, key)
            if problem is not None:
                raise PydanticCustomError("rest_label", problem)
        return value

    @field_validator("log_stream")
    @classmethod
    def _check_stream(cls, value: str) -> str:
        import string

        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError:
            names = {"?"}
        if not value or names - {"run_id", "host", "process"}:
            raise PydanticCustomError("rest_stream", "may only use {run_id}, {host} and {process}")
        return value

    @field_validator("gzip")
    @classmethod
    def _check_gzip(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value and info.data.get("service_type") == "cloudwatch":
            raise PydanticCustomError("rest_gzip", "cloudwatch does not accept gzip bodies")
        return value


class ElasticsearchConfig(_Handler):
    type: Literal["elasticsearch"] = "elasticsearch"
    #: One URL, comma-separated URLs, or a list of URLs.
    es_hosts: str | list[str] = "http://localhost:9200"
    #: A plain index (created with our mapping on first use), or the data stream's name.
    index_name: str = "workflow-traces"
    username: str | None = None
    password: SecretStr | None = None
    buffer_size: int = Field(default=100, gt=0)
    flush_interval: float = Field(default=2.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    #: An API key instead of username/password: the encoded key, or "id:key".
    api_key: SecretStr | None = None
    #: The CA certificate file (PEM) that signed the cluster's HTTPS certificate.
    ca_certs: str | None = None
    #: Verify HTTPS certificates; turn off only on purpose.
    verify_certs: bool = True
    #: Write to a data stream named index_name (op_type create) instead of a plain index.
    data_stream: bool = False
    #: Gzip request bodies (costs the sink's worker about 18 us a record).
    http_compress: bool = False
    #: ECS service.name; defaults to each record's workflow_name.
    service_name: str | None = None
    #: Create the index (or the data stream's index template) if it does not exist.
    manage_index: bool = True
    #: A network sink drops (counted and reported) rather than block the caller when full.
    overflow: Overflow = "drop"
    #: Keep records that cannot be sent now on disk here, and send them (oldest first) when
    #: the cluster is back, also after a restart. Unset: they wait in memory only.
    spool_dir: str | None = None
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    #: Backoff between retries (doubling, jittered) and its cap, also the cap between probes
    #: of a cluster whose circuit breaker is open.
    retry_base_delay: float = Field(default=0.5, gt=0)
    retry_max_delay: float = Field(default=30.0, gt=0)


class OpenSearchConfig(ElasticsearchConfig):
    """The OpenSearch sink: the Elasticsearch sink's keys (``es_hosts`` names the OpenSearch
    hosts), through the opensearch-py client; OpenSearch has no API keys."""

    type: Literal["opensearch"] = "opensearch"  # type: ignore[assignment]


HandlerConfig = Annotated[
    FileConfig | SQLiteConfig | RestAPIConfig | ElasticsearchConfig | OpenSearchConfig,
    Field(discriminator="type"),
]
HANDLER_TYPES = ("file", "sqlite", "restapi", "elasticsearch", "opensearch")


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
    "opensearch": OpenSearchConfig,
}


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


def handler_model(kind: object) -> type[_Handler] | None:
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


def validate_handler(data: dict[str, Any], style: str | KeyStyle = "key") -> _Handler:
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
