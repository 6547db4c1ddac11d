"""Ages and dates as users write them, and the errors that name what was expected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from workflow_traces.errors import ConfigError
from workflow_traces.pruning import prune
from workflow_traces.pruning.cutoff import parse_age, parse_when


def test_ages() -> None:
    assert parse_age("30d") == 30 * 86400
    assert (
        parse_age("12h") == 43200 and parse_age("90m") == 5400 and parse_age(" 2W ") == 14 * 86400
    )
    assert parse_age("1.5h") == 5400
    with pytest.raises(ValueError, match=r"--older-than: expected an age such as 30d.*got 'soon'"):
        parse_age("soon")


def test_points_in_time() -> None:
    assert parse_when("2026-11-01") == 1_793_491_200 * 10**9
    assert parse_when("2026-11-01T02:00+02:00") == 1_793_491_200 * 10**9
    assert parse_when("1d", now=100_000.0) == (100_000 - 86_400) * 10**9
    assert parse_when("9999-12-31") == 2**63 - 1  # beyond what SQLite holds: clamped
    with pytest.raises(ValueError, match="--since: expected an age such as 7d or an ISO date"):
        parse_when("yesterday")


def test_prune_arguments(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    with pytest.raises(ConfigError, match="does not exist"):
        prune(db, "30d")
    with pytest.raises(ConfigError, match=r"--older-than: expected an age >= 0"):
        prune(tmp_path, timedelta(days=-1))
    with pytest.raises(ConfigError, match="batch_rows: must be > 0"):
        prune(tmp_path, "1d", batch_rows=0)
    assert prune(tmp_path, 3600.0).runs == []  # an empty folder: nothing to remove
