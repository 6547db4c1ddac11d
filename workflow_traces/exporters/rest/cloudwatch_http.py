"""CloudWatch Logs target of the REST sink: SigV4-signed ``PutLogEvents`` over our httpx client.

Each request is an AWS JSON 1.1 call (``X-Amz-Target: Logs_20140328.<Action>``) signed with
botocore's SigV4 signer (botocore is the ``cloudwatch`` extra, imported on the sink's worker).
The events are encoded by ``exporters.rest.cloudwatch`` in the sink's ``cloudwatch_format``.
The log group and each log stream are created on first use, "already exists" counting as
success; a stream deleted meanwhile (ResourceNotFoundException) is created again and the call
repeated once. Events that CloudWatch refuses (too old, too new, expired) are counted as
rejected and reported. Throttling and 5xx are retried; other errors are permanent.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from workflow_traces.core.record import Record
from workflow_traces.diagnostics import report
from workflow_traces.errors import ConfigError
from workflow_traces.exporters.encode import dumps
from workflow_traces.exporters.rest.cloudwatch import CloudWatchFormat, encode_cloudwatch
from workflow_traces.exporters.rest.http import check_status, post
from workflow_traces.exporters.rest.payload import Request
from workflow_traces.pipeline.retry import (
    PayloadTooLargeError,
    PermanentError,
    RetryableError,
    parse_retry_after,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["CloudWatchTarget", "resolve_region"]

_RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "LimitExceededException",
        "ExpiredTokenException",
    }
)
_HOST_REGION = re.compile(r"^logs(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com|api\.aws)")


class _AwsError(Exception):
    def __init__(self, code: str, message: str, status: int, retry_after: float | None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.status = status
        self.retry_after = retry_after

    def ours(self) -> Exception:
        text = f"CloudWatch {self}"
        if self.status == 413:
            return PayloadTooLargeError(text)
        if self.code in _RETRYABLE or self.status in (408, 429) or self.status >= 500:
            return RetryableError(text, self.retry_after)
        return PermanentError(text)


def resolve_region(region: str | None, url: str | None) -> str:
    """The AWS region: given, else from the endpoint's host name, else AWS_REGION /
    AWS_DEFAULT_REGION; a ConfigError if none."""
    if region:
        return region
    if url:
        host = (url.split("://", 1)[-1].split("/", 1)[0]).split(":", 1)[0]
        match = _HOST_REGION.match(host)
        if match:
            return match.group(1)
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if found:
        return found
    raise ConfigError(
        "region: cloudwatch needs an AWS region: set region, or AWS_REGION / AWS_DEFAULT_REGION"
    )


def _rejected(answer: dict[str, Any], count: int) -> int:
    info = answer.get("rejectedLogEventsInfo") or {}
    bad: set[int] = set()
    start = info.get("tooNewLogEventStartIndex")
    if isinstance(start, int):
        bad.update(range(start, count))
    for key in ("tooOldLogEventEndIndex", "expiredLogEventEndIndex"):
        end = info.get(key)
        if isinstance(end, int):
            bad.update(range(0, min(end + 1, count)))
    return len(bad)


class CloudWatchTarget:
    """How the REST exporter talks to CloudWatch Logs."""

    content_type = "application/x-amz-json-1.1"

    def __init__(
        self,
        url: str,
        region: str,
        log_group: str,
        log_stream: str,
        credentials: tuple[str, str, str | None] | None = None,
        *,
        fmt: CloudWatchFormat = "text",
    ) -> None:
        if importlib.util.find_spec("botocore") is None:
            raise ConfigError(
                "service_type: 'cloudwatch' needs botocore: "
                "pip install 'workflow-traces[cloudwatch]'"
            )
        self.url = url
        self.region = region
        self.log_group = log_group
        self.log_stream = log_stream
        self.fmt: CloudWatchFormat = fmt
        self._static = credentials
        self._provider: Any = None
        self._group_ready = False
        self._streams: set[str] = set()

    def encode(self, batch: Sequence[Record]) -> list[Request]:
        return encode_cloudwatch(batch, self.log_group, self.log_stream, fmt=self.fmt)

    # -- one request ---------------------------------------------------------------------------
    def send(self, client: httpx.Client, req: Request) -> tuple[int, BaseException | None]:
        """PutLogEvents for ``req``; returns (events rejected by the service, why)."""
        stream = req.key or "workflow-traces"
        try:
            if stream not in self._streams:
                self._ensure(client, stream)
            try:
                answer = self._call(client, "PutLogEvents", req.body)
            except _AwsError as exc:
                if exc.code != "ResourceNotFoundException":
                    raise
                self._group_ready = False
                self._streams.discard(stream)
                self._ensure(client, stream)
                answer = self._call(client, "PutLogEvents", req.body)
        except _AwsError as exc:
            raise exc.ours() from None
        rejected = _rejected(answer, len(req.records))
        if rejected:
            info = answer.get("rejectedLogEventsInfo")
            return rejected, PermanentError(f"CloudWatch rejected {rejected} events: {info}")
        return 0, None

    def _ensure(self, client: httpx.Client, stream: str) -> None:
        if not self._group_ready:
            self._create(client, "CreateLogGroup", {"logGroupName": self.log_group})
            self._group_ready = True
        self._create(
            client, "CreateLogStream", {"logGroupName": self.log_group, "logStreamName": stream}
        )
        if len(self._streams) > 10_000:
            self._streams.clear()
        self._streams.add(stream)

    def _create(self, client: httpx.Client, action: str, payload: dict[str, str]) -> None:
        try:
            self._call(client, action, dumps(payload))
        except _AwsError as exc:
            if exc.code == "ResourceAlreadyExistsException":
                return
            if exc.code == "AccessDeniedException":
                # Allowed to put events but not to create: assume it exists, say so once.
                report(
                    f"cloudwatch-create:{self.log_group}",
                    f"workflow-traces: CloudWatch {action} was denied; assuming it exists",
                )
                return
            raise

    def _call(self, client: httpx.Client, action: str, body: bytes) -> dict[str, Any]:
        headers = self._sign(
            body, {"Content-Type": self.content_type, "X-Amz-Target": f"Logs_20140328.{action}"}
        )
        response = post(client, self.url, body, headers, gzip=False)
        if response.status_code == 200:
            if not response.content:
                return {}
            try:
                answer = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                return {}
            return answer if isinstance(answer, dict) else {}
        try:
            error = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            check_status(response)
            raise PermanentError(f"HTTP {response.status_code}") from None
        code = str(error.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{response.status_code}"
        message = str(error.get("message") or error.get("Message") or "")[:200]
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise _AwsError(code, message, response.status_code, retry_after)

    # -- signing -------------------------------------------------------------------------------
    def _credentials(self) -> Any:
        from botocore.credentials import Credentials

        if self._static is not None:
            return Credentials(*self._static)
        if self._provider is None:
            import botocore.session

            self._provider = botocore.session.Session().get_credentials()
        if self._provider is None:
            raise PermanentError(
                "no AWS credentials: set aws_access_key_id/aws_secret_access_key, or configure "
                "botocore's usual sources (environment, profile, role)"
            )
        return self._provider.get_frozen_credentials()

    def _sign(self, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=self.url, data=body, headers=headers)
        SigV4Auth(self._credentials(), "logs", self.region).add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}

    def after_fork(self) -> None:
        self._provider = None
