"""``TraceSettings``: the TRACE_* configuration, the one place the environment is read.

Precedence, lowest first: defaults, the ``.env`` file, the profile file ``.env.<profile>``, the
secrets directory, the process environment, then arguments (``TraceSettings(...)``) and, in
``get_trace``, ``extras``. ``TraceSettings.load()`` caches the result: it reads the files again
only when the TRACE_* environment, the working directory or a file's stamp changed. Nothing on a
record's path reads settings.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from workflow_traces.errors import ConfigError
from workflow_traces.exporters.config import RedactKeys, RedactPatterns
from workflow_traces.exporters.file import DEFAULT_FILE_PATH
from workflow_traces.exporters.sqlite.handler import DEFAULT_SQLITE_PATH
from workflow_traces.settings.config import (
    DEFAULT_PATH_SETTINGS,
    HandlerConfig,
    format_validation_error,
)
from workflow_traces.settings.sources import (
    ARGUMENTS,
    Origin,
    OriginStyle,
    Reading,
    environment_layer,
    read_sources,
    stamp,
)

__all__ = ["TraceSettings"]

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

#: The reading made while a TraceSettings is being built (its origins name errors).
_BUILDING: ContextVar[list[Reading]] = ContextVar("workflow_traces_settings_build")

_CACHE_SIZE = 16
_cache: OrderedDict[tuple[Any, ...], TraceSettings] = OrderedDict()
_cache_lock = threading.Lock()


class _TraceSource(PydanticBaseSettingsSource):
    """Every TRACE_* source at once (.env, profile file, secrets dir, environment), merged by
    ``_sources.read_sources``: pydantic-settings cannot give a list item by index
    (``TRACE_HANDLERS__0__TYPE``), nor say where each value came from."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        profile: str | None,
        env_file: str | None,
        secrets_dir: str | None,
    ) -> None:
        super().__init__(settings_cls)
        self.profile = profile
        self.env_file = env_file
        self.secrets_dir = secrets_dir

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads everything at once

    def __call__(self) -> dict[str, Any]:
        reading = read_sources(self.profile, self.env_file, self.secrets_dir)
        building = _BUILDING.get(None)
        if building is not None:
            building.append(reading)
        return dict(reading.tree)


class TraceSettings(BaseSettings):
    """Tracing configuration from TRACE_* variables, ``.env`` files and a secrets directory.

    ===========================  ===============================  =============================
    variable                     default                          meaning
    ===========================  ===============================  =============================
    TRACE_TRACE_TYPE             "multi" with handlers, else      file, sqlite or multi
    (or TRACE_TYPE)              "file"
    TRACE_HANDLERS               none                             JSON list of handler objects
    TRACE_HANDLERS__N__KEY       none                             one key of handler N
    TRACE_FAIL_SILENTLY          true                             a failing sink never raises
    TRACE_WORKFLOW_NAME, ...     none                             stamps (also JOB, STAGE)
    TRACE_ENVIRONMENT            none                             stamped into records' extras
    TRACE_PROFILE                none                             also read .env.<profile>
    TRACE_PATH                   FileConfig's path                file sink folder by default
    TRACE_SQLITE_PATH            SQLiteConfig's path              SQLite file by default
    TRACE_ENV_FILE               .env                             the base .env file
    TRACE_SECRETS_DIR            none                             one file per variable
    TRACE_REDACT_KEYS            the defaults (see Redaction)     extras keys redacted in every
                                                                  sink (JSON list or a,b,c)
    TRACE_REDACT_PATTERNS        the defaults                     regexes redacted (JSON list)
    TRACE_EXTRA_LOGGERS          none                             comma-separated loggers
                                                                  routed to the active scope
    TRACE_BUFFER_SIZE, ...       the handler type's               for a single file/sqlite
                                                                  trace: also FLUSH_INTERVAL,
                                                                  QUEUE_SIZE, OVERFLOW,
                                                                  BLOCK_TIMEOUT, LEVEL
    ===========================  ===============================  =============================

    Handler keys and their defaults are the handler models' (``FileConfig``, ``SQLiteConfig``,
    ``RestAPIConfig``, ``ElasticsearchConfig``, and those of the other registered sink types).
    Secrets are ``SecretStr``. Errors are one
    ``ConfigError`` line per problem, naming the variable: ``TRACE_HANDLERS__1__BUFFER_SIZE:
    must be > 0, got -5``. ``TraceSettings()`` reads every source now;
    ``TraceSettings.load()`` returns a cached reading while nothing changed.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRACE_",
        env_nested_delimiter="__",
        env_file=".env",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    trace_type: Literal["file", "sqlite", "multi"] | None = None
    handlers: list[HandlerConfig] = Field(default_factory=list)
    fail_silently: bool = True
    workflow_name: str | None = None
    job_name: str | None = None
    stage_name: str | None = None
    environment: str | None = None
    profile: str | None = None
    path: str = DEFAULT_FILE_PATH
    sqlite_path: str = DEFAULT_SQLITE_PATH
    env_file: str = ".env"
    secrets_dir: str | None = None
    # A single file or sqlite trace's handler keys (as at the top level of extras).
    buffer_size: int | None = Field(default=None, gt=0)
    flush_interval: float | None = Field(default=None, gt=0)
    queue_size: int | None = Field(default=None, gt=0)
    queue_bytes: int | None = Field(default=None, gt=0)
    overflow: Literal["block", "drop"] | None = None
    block_timeout: float | None = Field(default=None, ge=0)
    level: Level | None = None
    # Redaction for every sink that sets no redact_keys / redact_patterns of its own; None:
    # the defaults (pipeline.redact).
    redact_keys: RedactKeys = None
    redact_patterns: RedactPatterns = None
    #: Comma-separated stdlib logger names whose records inside a traced scope go to that
    #: scope's sinks (``core.extra_loggers``).
    extra_loggers: str | None = None

    _origins: dict[tuple[int | str, ...], Origin] = PrivateAttr(default_factory=dict)
    _files: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_paths(cls, data: Any) -> Any:
        """A file or SQLite handler without a path takes TRACE_PATH / TRACE_SQLITE_PATH."""
        if not isinstance(data, dict) or not isinstance(data.get("handlers"), list):
            return data
        defaults: dict[Any, Any] = {
            kind: data.get(key, cls.model_fields[key].default)
            for kind, key in DEFAULT_PATH_SETTINGS.items()
        }
        handlers = []
        for item in data["handlers"]:
            default = defaults.get(item.get("type")) if isinstance(item, dict) else None
            if isinstance(default, str) and "path" not in item:
                handlers.append({**item, "path": default})
            else:
                handlers.append(item)
        return {**data, "handlers": handlers}

    def __init__(self, **values: Any) -> None:
        readings: list[Reading] = []
        token = _BUILDING.set(readings)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            data, origins = _data_and_origins(readings, values)
            message = format_validation_error(exc, data, OriginStyle(origins), root=TraceSettings)
            raise ConfigError(message) from None
        finally:
            _BUILDING.reset(token)
        self._origins = _data_and_origins(readings, values)[1]
        self._files = dict(readings[-1].files) if readings else {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init = getattr(init_settings, "init_kwargs", {})
        env_file = getattr(dotenv_settings, "env_file", None)
        if env_file == cls.model_config.get("env_file") or not isinstance(
            env_file, str | os.PathLike
        ):
            env_file = None  # the default: TRACE_ENV_FILE may name another
        secrets_dir = getattr(file_secret_settings, "secrets_dir", None)
        source = _TraceSource(
            settings_cls,
            profile=init.get("profile"),
            env_file=None if env_file is None else str(env_file),
            secrets_dir=str(secrets_dir) if isinstance(secrets_dir, str | os.PathLike) else None,
        )
        return init_settings, source

    @property
    def origins(self) -> dict[tuple[int | str, ...], Origin]:
        """Where each value set by a source came from (values not here are defaults)."""
        return dict(self._origins)

    @property
    def files(self) -> dict[str, Any]:
        """The files consulted (.env, profile file, secret files) and their stamps."""
        return dict(self._files)

    @classmethod
    def load(
        cls,
        profile: str | None = None,
        env_file: str | os.PathLike[str] | None = None,
        secrets_dir: str | os.PathLike[str] | None = None,
    ) -> TraceSettings:
        """The settings, read again only when the TRACE_* environment, the working directory,
        the arguments or one of the files consulted changed since the last call."""
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = ""
        env = sorted(environment_layer().variables.items())
        digest = hashlib.sha256(repr(env).encode("utf-8", "surrogatepass")).hexdigest()
        key = (cls, cwd, digest, profile, _text(env_file), _text(secrets_dir))
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and all(stamp(p) == s for p, s in hit._files.items()):
            return hit
        kwargs: dict[str, Any] = {}
        if profile is not None:
            kwargs["profile"] = profile
        if env_file is not None:
            kwargs["_env_file"] = str(env_file)
        if secrets_dir is not None:
            kwargs["_secrets_dir"] = str(secrets_dir)
        settings = cls(**kwargs)
        with _cache_lock:
            _cache[key] = settings
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return settings

    @classmethod
    def clear_cache(cls) -> None:
        """Forget cached readings: the next ``load()`` reads every source again."""
        with _cache_lock:
            _cache.clear()


def _text(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


def _data_and_origins(
    readings: list[Reading], values: dict[str, Any]
) -> tuple[dict[str, Any], dict[tuple[int | str, ...], Origin]]:
    """The merged input and each leaf's origin; arguments win over every source."""
    reading = readings[-1] if readings else Reading()
    data = dict(reading.tree)
    origins = dict(reading.origins)
    for key, value in values.items():
        if key.startswith("_"):
            continue
        data[key] = value
        for loc in [loc for loc in origins if loc[:1] == (key,)]:
            del origins[loc]
        origins[(key,)] = Origin(ARGUMENTS, key, (key,), raw=False)
    return data, origins
