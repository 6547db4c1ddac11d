"""The batch path's pre-checks (the joined messages searched once, markers, extras dicts judged
once) never let a secret through: each default pattern's secret, anywhere in a batch, in a
message, an exception or extras, is redacted, and only the records that hold one change."""

from __future__ import annotations

from typing import Any

import pytest

from workflow_traces.core.record import F_EXC_MESSAGE, F_EXC_TRACEBACK, F_EXTRAS, F_MESSAGE, Record
from workflow_traces.pipeline.redact import (
    DEFAULT_REDACT_KEYS,
    DEFAULT_REDACT_PATTERNS,
    REDACTED,
    Redactor,
)

SECRETS = [
    "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "BEARER abc123",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIA" + "Z" * 16,
    "ghp_" + "a1B2" * 9,
    "gho_" + "x" * 36,
    "ghu_" + "y" * 36,
    "ghs_" + "z" * 36,
    "ghr_" + "w" * 36,
    "github_pat_" + "A" * 22 + "_" + "b" * 59,
    "xoxb-123456789012-abcdefgh",
    "xoxp-123456789012-abcdefgh",
    "xapp-1-A0123456789-abcdef",
    "sk_live_" + "Q" * 24,
    "rk_live_" + "Q" * 24,
    "sk_test_" + "Q" * 24,
    "whsec_" + "W" * 32,
]


def _rec(i: int, message: str = "", **fields: Any) -> tuple[Any, ...]:
    rec = Record(
        time_ns=0, level="INFO", levelno=20, message=message or f"processed item {i} of load_{i}",
        run_id="run", parent_run_id=None, workflow_name=None, job_name=None, stage_name=None,
        filename=None, lineno=None, func_name=None, process=1, thread=1, host="h",
        record_id=10**15 + i,  # type: ignore[arg-type]  # the counter, as the caller queues it
    )  # fmt: skip
    return tuple(rec._replace(**fields))


@pytest.fixture
def red() -> Redactor:
    return Redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS)


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("where", [0, 250, 499])
def test_a_secret_anywhere_in_a_batch_is_redacted(red: Redactor, secret: str, where: int) -> None:
    batch = [_rec(i) for i in range(500)]
    batch[where] = _rec(where, f"using {secret} now")
    out = red.batch(batch)
    assert secret not in out[where][F_MESSAGE] and REDACTED in out[where][F_MESSAGE]
    assert [i for i in range(500) if out[i] is not batch[i]] == [where]


def test_url_credentials_and_text_that_lowercases_to_another_length(red: Redactor) -> None:
    batch = [_rec(i, "İİİ before") for i in range(10)]  # "İ".lower() is two characters
    batch.append(_rec(10, "clone https://bob:hunter2@git.example.com/x.git"))
    out = red.batch(batch)
    assert out[10][F_MESSAGE] == f"clone https://{REDACTED}@git.example.com/x.git"
    assert all(out[i] is batch[i] for i in range(10))


def test_exceptions_and_extras_are_redacted_though_no_message_matches(red: Redactor) -> None:
    shared = {"environment": "prod", "db_password": "pw1", "nested": {"Authorization": "x"}}
    batch = [_rec(i, extras=shared) for i in range(100)]
    batch[7] = _rec(7, exc_message="token ghs_" + "e" * 36, exc_traceback="at ghs_" + "e" * 36)
    out = red.batch(batch)
    assert "ghs_" not in out[7][F_EXC_MESSAGE] and "ghs_" not in out[7][F_EXC_TRACEBACK]
    expected = {
        "environment": "prod",
        "db_password": REDACTED,
        "nested": {"Authorization": REDACTED},
    }
    assert all(out[i][F_EXTRAS] == expected for i in range(100) if i != 7)
    assert shared["db_password"] == "pw1"  # the caller's dict is never changed


def test_user_patterns_skip_the_markers_but_not_the_redaction() -> None:
    red = Redactor(("ssn",), (*DEFAULT_REDACT_PATTERNS, r"\b\d{3}-\d{2}-\d{4}\b"))
    batch = [_rec(i) for i in range(50)]
    batch[3] = _rec(3, "ssn 123-45-6789 and AKIAIOSFODNN7EXAMPLE")
    out = red.batch(batch)
    assert out[3][F_MESSAGE] == f"ssn {REDACTED} and {REDACTED}"
    assert [i for i in range(50) if out[i] is not batch[i]] == [3]


@pytest.mark.parametrize("secret", SECRETS)
def test_text_with_each_markers_characters_apart_is_searched_all_the_same(
    red: Redactor, secret: str
) -> None:
    # The pre-check looks for a marker only where all of its characters occur (each found at
    # memchr's speed): text that holds them apart passes it and is then searched for the
    # markers themselves, which finds none; the secret still is.
    apart = "a bear, a kiosk, an apple box: sixty-two / x"
    batch = [_rec(i, apart) for i in range(200)]
    batch[120] = _rec(120, f"{apart} {secret}")
    out = red.batch(batch)
    assert [i for i in range(200) if out[i] is not batch[i]] == [120]
    assert secret not in out[120][F_MESSAGE] and out[120][F_MESSAGE].startswith(apart)
