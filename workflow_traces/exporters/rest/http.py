"""Sending one REST request with httpx and sorting its outcome into our error classes.

- Connection errors and timeouts: :class:`RetryableError`.
- 408, 429 and 5xx: :class:`RetryableError` with the server's ``Retry-After``.
- 413: :class:`PayloadTooLargeError` (the batch is split).
- Any other status outside 2xx (400, 401, 403, 404, redirects): :class:`PermanentError`.

Error messages never hold the URL (which may carry a key in its query) nor request headers.
httpx is imported by the caller, on the sink's worker, never at ``import workflow_traces``.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING

from workflow_traces.exporters.encode import clean_text
from workflow_traces.pipeline.retry import (
    PayloadTooLargeError,
    PermanentError,
    RetryableError,
    parse_retry_after,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["check_status", "gzip_body", "post", "safe_message"]

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def safe_message(exc: BaseException) -> str:
    """``exc``'s type and message with any URL in it blanked out."""
    text = _URL.sub("<url>", clean_text(str(exc)))[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def gzip_body(body: bytes) -> bytes:
    """``body`` gzipped (level 1: the worker's time matters more than a few bytes)."""
    return zlib.compress(body, 1, wbits=31)


def _snippet(response: httpx.Response) -> str:
    try:
        text = response.content[:300].decode("utf-8", "replace")
    except Exception:  # a broken stream must not hide the status
        return ""
    return _URL.sub("<url>", " ".join(text.split()))[:200]


def check_status(response: httpx.Response) -> None:
    """Raise the error class that fits a non-2xx ``response``; return for 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = _snippet(response)
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 413:
        raise PayloadTooLargeError(message)
    if status in (408, 429) or status >= 500:
        raise RetryableError(message, parse_retry_after(response.headers.get("Retry-After")))
    raise PermanentError(message)


def post(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], gzip: bool
) -> httpx.Response:
    """POST ``body`` (gzipped if asked) and return the response; transport failures become
    :class:`RetryableError`. The status is not checked here."""
    import httpx

    if gzip:
        body = gzip_body(body)
        headers = {**headers, "Content-Encoding": "gzip"}
    try:
        return client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"timed out: {safe_message(exc)}") from None
    except httpx.TransportError as exc:
        raise RetryableError(safe_message(exc)) from None
