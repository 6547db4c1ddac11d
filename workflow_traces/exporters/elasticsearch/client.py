"""Connecting to Elasticsearch: hosts, credentials, TLS, and what a client failure means.

Shared by the sink (``_elasticsearch``) and the store (``_elasticsearch_store``). The official
client is imported only when a client is made. Credentials are held as ``SecretStr`` and read
only when the client is built; hosts are kept without any ``user:password@`` part, so
:meth:`Connection.describe` is safe for names, errors and logs.

The client's own retries are off (``max_retries=0``): the sink's retry policy decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from workflow_traces.errors import ConfigError
from workflow_traces.pipeline.retry import (
    RETRYABLE_STATUS,
    PermanentError,
    RetryableError,
    parse_retry_after,
)

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["Connection", "classify", "parse_hosts", "secret", "short_error", "status_of"]


def secret(value: Any, field: str) -> SecretStr | None:
    """``value`` (str or SecretStr) as a SecretStr; None stays None."""
    if value is None:
        return None
    from pydantic import SecretStr

    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    raise ConfigError(f"{field}: expected a string, got {type(value).__name__}")


def parse_hosts(
    es_hosts: str | list[str] | tuple[str, ...],
) -> tuple[list[str], str | None, str | None]:
    """Hosts without credentials, and the user and password found in them (if any).

    ``es_hosts`` is one URL, a comma-separated string of URLs or a list of URLs.
    """
    items = es_hosts.split(",") if isinstance(es_hosts, str) else list(es_hosts)
    hosts: list[str] = []
    user = password = None
    for raw in items:
        if not isinstance(raw, str):
            raise ConfigError(f"es_hosts: expected URLs, got {type(raw).__name__}")
        text = raw.strip()
        if not text:
            continue
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            safe = parts.hostname or "?"
            raise ConfigError(
                f"es_hosts: expected http(s)://host:port, got a URL with scheme "
                f"{parts.scheme!r} and host {safe!r}"
            )
        if parts.username is not None:
            user = unquote(parts.username)
            password = None if parts.password is None else unquote(parts.password)
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"es_hosts: invalid port in host {parts.hostname!r}") from None
        if port is not None:
            netloc += f":{port}"
        hosts.append(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")))
    if not hosts:
        raise ConfigError("es_hosts: at least one Elasticsearch URL is required, got none")
    return hosts, user, password


@dataclass(frozen=True, repr=False)
class Connection:
    """Everything needed to build a client. ``repr`` and ``describe`` hold no secret."""

    hosts: tuple[str, ...]
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout: float = 30.0
    http_compress: bool = False
    #: Which product the hosts run: "elasticsearch" or "opensearch" (see adapters.py).
    product: str = "elasticsearch"

    def __post_init__(self) -> None:
        if self.product == "opensearch" and self.api_key is not None:
            raise ConfigError(
                "api_key: OpenSearch has no API keys; authenticate with username and password"
            )
        if self.api_key is not None and (self.username is not None or self.password is not None):
            raise ConfigError("api_key: give either api_key or username/password, not both")
        if self.password is not None and self.username is None:
            raise ConfigError("username: is required when a password is given")
        if self.ca_certs is not None:
            import os

            if not os.path.isfile(self.ca_certs):
                raise ConfigError(f"ca_certs: no such file {self.ca_certs!r}")

    def describe(self) -> str:
        """The hosts, for names and messages: ``http://127.0.0.1:9200`` or ``a:9200 (+2)``."""
        first = self.hosts[0]
        return first if len(self.hosts) == 1 else f"{first} (+{len(self.hosts) - 1})"

    def __repr__(self) -> str:
        auth = "api_key" if self.api_key else ("basic" if self.username else "none")
        return f"Connection({self.describe()!r}, auth={auth}, verify_certs={self.verify_certs})"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``elasticsearch.Elasticsearch`` (these hold the secrets)."""
        options: dict[str, Any] = {
            "request_timeout": self.timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "retry_on_status": (),
            "http_compress": self.http_compress,
            "verify_certs": self.verify_certs,
        }
        if self.ca_certs is not None:
            options["ca_certs"] = self.ca_certs
        if self.username is not None:
            password = "" if self.password is None else self.password.get_secret_value()
            options["basic_auth"] = (self.username, password)
        if self.api_key is not None:
            key = self.api_key.get_secret_value()
            # "id:key" is given as a pair; anything else is the encoded form (base64 has no ":").
            options["api_key"] = tuple(key.split(":", 1)) if ":" in key else key
        return options

    @property
    def product_name(self) -> str:
        """``Elasticsearch`` or ``OpenSearch``, for messages."""
        return "OpenSearch" if self.product == "opensearch" else "Elasticsearch"

    def client(self) -> Any:
        """A new ``elasticsearch.Elasticsearch`` client (JSON through orjson)."""
        from elasticsearch import Elasticsearch
        from elasticsearch.serializer import OrjsonSerializer

        return Elasticsearch(
            list(self.hosts), serializer=OrjsonSerializer(), **self.client_options()
        )


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client API error, or None."""
    meta = getattr(exc, "meta", None)
    status = getattr(meta, "status", None)
    return status if isinstance(status, int) else None


def _error_type(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            kind = str(error.get("type", ""))
            reason = str(error.get("reason", ""))[:300]
            return f"{kind}: {reason}" if reason else kind
        if isinstance(error, str):
            return error[:300]
    return getattr(exc, "message", None) or type(exc).__name__


def classify(exc: BaseException, where: str, product: str = "Elasticsearch") -> Exception:
    """``exc`` from the client as RetryableError (connection errors, timeouts, 408, 429, 5xx)
    or PermanentError (TLS, authentication, other 4xx, not Elasticsearch). ``where`` names the
    cluster (never a secret); the message never holds a credential. ``product`` names the
    server in messages; an OpenSearch adapter raises its errors already shaped (adapters.py)."""
    if isinstance(exc, RetryableError | PermanentError):
        return exc
    if product != "Elasticsearch":
        return _classify_status(exc, where, product)
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import ConnectionTimeout, TlsError
    from elasticsearch import UnsupportedProductError

    if isinstance(exc, TlsError):
        return PermanentError(
            f"TLS failed with Elasticsearch at {where}: {short_error(exc)} "
            "(set ca_certs to the cluster's CA file, or verify_certs=False to skip the check)"
        )
    if isinstance(exc, ConnectionTimeout):
        return RetryableError(f"Elasticsearch at {where} timed out")
    if isinstance(exc, TransportConnectionError):
        return RetryableError(f"cannot reach Elasticsearch at {where}: {short_error(exc)}")
    if isinstance(exc, UnsupportedProductError):
        return PermanentError(
            f"the server at {where} is not Elasticsearch (for OpenSearch, use the opensearch sink)"
        )
    return _classify_status(exc, where, product)


def _classify_status(exc: BaseException, where: str, product: str) -> Exception:
    status = status_of(exc)
    if status is None:
        return RetryableError(f"{product} at {where} failed: {type(exc).__name__}: {exc}")
    detail = _error_type(exc)
    if status == 401:
        return PermanentError(f"{product} at {where} refused the credentials (401): {detail}")
    if status == 403:
        return PermanentError(f"{product} at {where} forbids this (403): {detail}")
    if status in RETRYABLE_STATUS or status >= 500:
        headers = getattr(getattr(exc, "meta", None), "headers", None) or {}
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RetryableError(
            f"{product} at {where} answered {status}: {detail}", retry_after=retry_after
        )
    hint = ""
    if status == 406 and "compatible-with" in detail:
        # OpenSearch refuses the Elasticsearch 8 client's media type.
        hint = " (an OpenSearch cluster? use the opensearch sink, or opensearch+https:// to read)"
    return PermanentError(f"{product} at {where} answered {status}: {detail}{hint}")


def short_error(exc: BaseException) -> str:
    """The readable part of a transport error's text (never a credential: hosts are kept
    without them)."""
    text = str(exc)
    # urllib3 wraps the cause: keep the readable tail, not the object reprs.
    for marker in ("Failed to establish a new connection: ", "certificate verify failed"):
        at = text.find(marker)
        if at >= 0:
            return text[at:].rstrip(")'\"")[:200]
    return text[:200]
