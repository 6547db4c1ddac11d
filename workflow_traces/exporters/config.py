"""The base config models of a sink type: the keys every sink takes (``SinkConfig``) and those of
sinks that send over a network (``NetworkSinkConfig``: timeouts, retries, circuit breaker,
spool). A sink type's own model subclasses one of them and adds its keys; the same model checks
``extras`` given in code and the TRACE_* settings.

Each field's ``description`` is its meaning in the README's key tables (which are generated
from these models, see ``workflow_traces.settings.keytables``); ``json_schema_extra=
{"default_text": ...}`` says the default in words where the value alone would mislead.

Needs pydantic: imported only when configuration is read, never by ``import workflow_traces``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from workflow_traces.errors import ConfigError
from workflow_traces.pipeline.bounds import (
    DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_SIZE,
    NETWORK_QUEUE_BYTES,
)
from workflow_traces.pipeline.redact import check_patterns
from workflow_traces.pipeline.retry import DEFAULT_SPOOL_MAX_BYTES
from workflow_traces.pipeline.sample import check_rates

if TYPE_CHECKING:
    from workflow_traces.pipeline.channel import RetryPolicy
    from workflow_traces.pipeline.process import RecordProcess

__all__ = [
    "PROCESS_KEYS",
    "Level",
    "NetworkSinkConfig",
    "Overflow",
    "RedactKeys",
    "RedactPatterns",
    "SinkConfig",
    "shown",
    "text_list",
]

#: The common keys the sink's worker applies before encoding (see ``pipeline.process``), not
#: keywords of a handler: the factory gives them to the handler's channel.
PROCESS_KEYS = frozenset(
    {"redact", "redact_keys", "redact_patterns", "sample", "max_records_per_second"}
)

Overflow = Literal["block", "drop"]
Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def text_list(value: Any) -> Any:
    """A list given as text (a variable's value): a JSON list, else comma-separated words for
    keys (``patterns=True``: else one pattern). Other values are returned as they are."""
    return _text_list(value, patterns=False)


def _text_list(value: Any, *, patterns: bool) -> Any:
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        import json

        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if isinstance(decoded, list):
            return decoded
    if patterns:
        return [value]
    return [part.strip() for part in value.split(",") if part.strip()]


def pattern_list(value: Any) -> Any:
    """Like ``text_list`` for regexes: text that is not a JSON list is one pattern."""
    return _text_list(value, patterns=True)


def checked_patterns(value: list[str] | None) -> list[str] | None:
    """``value``'s regexes, each compiled once to check it (a pydantic error naming a bad one)."""
    if value is None:
        return None
    try:
        return check_patterns(value, "pattern")
    except ConfigError as exc:
        raise PydanticCustomError("redact_pattern", str(exc).partition(": ")[2]) from None


#: The redaction keys and patterns as the TRACE_* settings and every sink take them: a list, a
#: JSON list or comma-separated text; patterns are compiled once, to refuse a bad one by name.
RedactKeys = Annotated[list[str] | None, BeforeValidator(text_list)]
RedactPatterns = Annotated[
    list[str] | None, BeforeValidator(pattern_list), AfterValidator(checked_patterns)
]


def shown(text: str) -> dict[str, Any]:
    """``json_schema_extra`` for a field whose default the key tables show as ``text``."""
    return {"default_text": text}


class SinkConfig(BaseModel):
    """The keys every sink type takes. A subclass sets ``type`` to a ``Literal`` of its name
    (``type: Literal["csv"] = "csv"``) and may change the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: The TraceSettings field (``"path"``: TRACE_PATH) whose value a handler of this type
    #: takes as its ``path`` when it gives none; None: no such setting.
    default_path_setting: ClassVar[str | None] = None

    type: str
    buffer_size: int = Field(
        default=100,
        gt=0,
        description=(
            "how much one write takes: bytes for `file`, records for the others (a local sink "
            "writes a backlog up to 16 of these at once)"
        ),
        json_schema_extra=shown("per type, below (`100` for a type that sets none)"),
    )
    flush_interval: float = Field(
        default=1.0,
        gt=0,
        description="seconds a record may wait before its sink writes it",
        json_schema_extra=shown("per type, below (`1.0` for a type that sets none)"),
    )
    queue_size: int = Field(
        default=DEFAULT_QUEUE_SIZE,
        gt=0,
        description=(
            "records the buffer holds at most (also bounded by `queue_bytes`: whichever is "
            "reached first). A sleeping worker is woken once the buffer is 15/16 full, so a burst "
            "that fits is taken without the workers competing with your code"
        ),
    )
    queue_bytes: int = Field(
        default=DEFAULT_QUEUE_BYTES,
        gt=0,
        description=(
            "about how much memory the buffer takes at most, in bytes: a record counts as its "
            "message's length plus about 500 bytes (short records: about 108,000 at the "
            "default). A record queued in several sinks is held once. Lower it to bound memory"
        ),
        json_schema_extra=shown("`54525952` (52 MiB)"),
    )
    overflow: Overflow = Field(
        default="block",
        description=(
            "when the buffer is full: `block` the caller up to `block_timeout`, then drop; or "
            "`drop` at once. Drops are counted in `health()` and reported."
        ),
    )
    block_timeout: float = Field(default=1.0, ge=0, description="seconds")
    level: Level = Field(default="DEBUG", description="the least level this sink takes")
    # -- what the sink's worker does before encoding (see pipeline.process) ---------------------
    redact: bool = Field(
        default=True,
        description="redact secrets before this sink encodes a record (see Redaction); "
        "`false`: this sink gets the original text",
    )
    redact_keys: RedactKeys = Field(
        default=None,
        description="extras keys whose values become `[REDACTED]` (a key containing one, "
        "any case); replaces the defaults",
        json_schema_extra=shown("`TRACE_REDACT_KEYS`, else the defaults (see Redaction)"),
    )
    redact_patterns: RedactPatterns = Field(
        default=None,
        description="regexes redacted in messages, exceptions, tracebacks and extras' text; "
        "replaces the defaults",
        json_schema_extra=shown("`TRACE_REDACT_PATTERNS`, else the defaults (see Redaction)"),
    )
    sample: dict[str, float] | None = Field(
        default=None,
        description='the fraction of DEBUG and INFO log lines this sink keeps, as `{"DEBUG": '
        "0.01}` (see Sampling); the others are counted as `sampled`",
        json_schema_extra=shown("keep all"),
    )
    max_records_per_second: float | None = Field(
        default=None,
        gt=0,
        description="DEBUG and INFO log lines a second this sink keeps at most, by the "
        "records' time; the others are counted as `limited`",
        json_schema_extra=shown("no limit"),
    )

    @field_validator("sample")
    @classmethod
    def _check_sample(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        try:
            return check_rates(value, "level")
        except ConfigError as exc:
            raise PydanticCustomError("sample_rate", str(exc).partition(": ")[2]) from None

    def keywords(self) -> dict[str, Any]:
        """Every key but ``type`` and the ``PROCESS_KEYS``, as keyword arguments of a handler:
        ``level`` as a number."""
        out = self.model_dump(exclude={"type", *PROCESS_KEYS})
        out["level"] = logging.getLevelNamesMapping()[self.level]
        return out

    def record_process(
        self, keys: list[str] | None = None, patterns: list[str] | None = None
    ) -> RecordProcess | None:
        """The worker's step for this sink (see ``pipeline.process``): ``keys`` and
        ``patterns`` (TRACE_REDACT_KEYS, TRACE_REDACT_PATTERNS) where this sink sets none."""
        from workflow_traces.pipeline.process import record_process

        return record_process(
            redact=self.redact,
            redact_keys=self.redact_keys if self.redact_keys is not None else keys,
            redact_patterns=self.redact_patterns if self.redact_patterns is not None else patterns,
            sample=self.sample,
            max_records_per_second=self.max_records_per_second,
        )

    # -- hooks: what the factory and ``config check`` ask of a sink type ------------------------
    def describe(self) -> str:
        """What ``config check`` calls this sink: ``file ./logs``. Never holds a secret."""
        return self.type

    def requirements(self) -> list[tuple[str, str]]:
        """Optional packages this sink needs, as (module, how to install it): a missing one is
        a ConfigError when the sink is configured, not an outage later."""
        return []

    def endpoints(self) -> list[str]:
        """The URLs the sink sends to. ``config check`` connects to each one; a sink with none
        is checked by writing one probe record through it instead. Raise ConfigError when the
        settings do not tell where the sink sends."""
        return []

    def verify_tls(self) -> bool | str:
        """How ``config check`` verifies HTTPS: True, False, or a CA bundle's path."""
        return True

    def store_location(self) -> str | None:
        """Where ``open_store`` reads this sink's records back (``config check`` does), if it
        can."""
        return None

    def remove_run(self, run_id: str) -> None:
        """Remove the records of ``run_id`` from the sink, if it can: ``config check`` removes
        its probe run this way, so that it does not show among the user's runs."""
        return None

    def retry_policy(self) -> RetryPolicy | None:
        """How failed batches are retried; None: the pipeline's default for local sinks (two
        quick retries, then the records count as failed)."""
        return None


class NetworkSinkConfig(SinkConfig):
    """A sink that sends over a network: it drops rather than block the caller when full, and
    failed batches are retried with backoff, then held by a circuit breaker (in memory, or on
    disk with ``spool_dir``) until the service answers."""

    buffer_size: int = Field(
        default=50,
        gt=0,
        description=(
            "records per request; a backlog goes about 1,000 records at a time (`buffer_size` "
            "when larger), in as few requests as the service's limits allow"
        ),
    )
    flush_interval: float = Field(default=2.0, gt=0, description="")
    overflow: Overflow = Field(
        default="drop",
        description=(
            "network sinks drop (counted) rather than block your code when their buffer is full"
        ),
    )
    queue_bytes: int = Field(
        default=NETWORK_QUEUE_BYTES,
        gt=0,
        description="less than a local sink's: an outage fills a network sink's buffer",
        json_schema_extra=shown("`29360128` (28 MiB)"),
    )
    timeout: float = Field(default=10.0, gt=0, description="seconds per request")
    max_retries: int = Field(
        default=3, ge=0, description="retries before the circuit breaker takes over"
    )
    spool_dir: str | None = Field(
        default=None,
        description=(
            "keep records that cannot be sent now on disk here; they are sent, oldest first, "
            "when the service is back, also by the next process. Unset: they wait in memory"
        ),
    )
    spool_max_bytes: int = Field(
        default=DEFAULT_SPOOL_MAX_BYTES,
        gt=0,
        description="the spool's bound",
        json_schema_extra=shown(f"`{DEFAULT_SPOOL_MAX_BYTES}` (256 MiB)"),
    )
    retry_base_delay: float = Field(
        default=0.5, gt=0, description="backoff between retries (doubling, jittered), seconds"
    )
    retry_max_delay: float = Field(
        default=30.0,
        gt=0,
        description="the cap of that backoff, also between probes of a service that is down",
    )

    def retry_policy(self) -> RetryPolicy:
        from workflow_traces.pipeline.retry import NetworkRetryPolicy

        return NetworkRetryPolicy(
            self.max_retries,
            self.retry_base_delay,
            self.retry_max_delay,
            spool_dir=self.spool_dir,
            spool_max_bytes=self.spool_max_bytes,
        )
