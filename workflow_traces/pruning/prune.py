"""``prune``: remove whole runs that ended before a cutoff from a SQLite database or a
file-sink folder: their records and events, their child runs, and (folders) their run folders.

Which runs go (see ``choose``):

- a run that ended before the cutoff (its last workflow end event; a run without lifecycle
  events ended at its last record);
- with it, its child runs (``parent_run_id``), whenever they ended;
- never a run whose parent is in the store and stays: it goes with its parent;
- never an unfinished run (started, not ended), unless ``include_unfinished`` (then one that
  started before the cutoff goes); never a failed one with ``keep_failed``.

SQLite rows are deleted in batches of at most ``batch_rows`` rows, one short write transaction
each, so a sink writing to the same database never waits long for its turn.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from workflow_traces.errors import ConfigError
from workflow_traces.pruning.cutoff import parse_age
from workflow_traces.store.local import RunSummary, open_store

__all__ = ["DEFAULT_BATCH_ROWS", "PruneResult", "choose", "prune"]

#: Rows deleted per write transaction by default.
DEFAULT_BATCH_ROWS = 2000
#: Run ids per DELETE statement.
_RUNS_PER_STATEMENT = 200


@dataclass
class PruneResult:
    """What ``prune`` removed, or, with ``dry_run``, would remove."""

    location: str
    cutoff: datetime
    dry_run: bool
    #: The runs removed (or that would be), oldest first.
    runs: list[RunSummary] = field(default_factory=list)
    records: int = 0
    #: Bytes freed: a folder's files; inside a database, the pages now free for new records
    #: (the file keeps its size until VACUUM). With dry_run, an estimate.
    bytes_freed: int = 0
    #: Runs kept only because they are unfinished (see include_unfinished) or failed (see
    #: keep_failed).
    kept_unfinished: int = 0
    kept_failed: int = 0
    #: SQLite: write transactions made, and the longest one's milliseconds.
    transactions: int = 0
    longest_transaction_ms: float = 0.0

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = []
        for run in self.runs:
            when = run.ended or run.started
            at = when.strftime("%Y-%m-%d %H:%M:%S") if when else "?"
            out.append(
                f"{verb} run {run.run_id} ({run.workflow_name or '-'}, {run.status or 'no status'}"
                f", {'ended' if run.ended else 'started'} {at}, {run.record_count:,} records)"
            )
        space = _bytes(self.bytes_freed)
        if Path(self.location).is_dir():
            freed = f"{space} freed"
        else:
            about = "about " if self.dry_run else ""
            freed = f"{about}{space} freed inside the database (VACUUM gives it back to the disk)"
        out.append(
            f"{verb} {len(self.runs):,} runs and {self.records:,} records that ended before "
            f"{self.cutoff:%Y-%m-%d %H:%M:%S} UTC from {self.location}: {freed}"
        )
        if self.kept_unfinished:
            out.append(
                f"kept {self.kept_unfinished:,} unfinished runs (--include-unfinished removes them)"
            )
        if self.kept_failed:
            out.append(f"kept {self.kept_failed:,} failed runs (--keep-failed)")
        return out


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _cutoff(older_than: str | float | timedelta, now: float | None) -> datetime:
    if isinstance(older_than, timedelta):
        seconds = older_than.total_seconds()
    elif isinstance(older_than, str):
        try:
            seconds = parse_age(older_than)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    elif isinstance(older_than, int | float) and not isinstance(older_than, bool):
        seconds = float(older_than)
    else:
        raise ConfigError(f"--older-than: expected an age such as 30d, got {older_than!r}")
    if seconds < 0:
        raise ConfigError(f"--older-than: expected an age >= 0, got {older_than!r}")
    return datetime.fromtimestamp(time.time() if now is None else now, UTC) - timedelta(
        seconds=seconds
    )


def choose(
    summaries: Iterable[RunSummary],
    cutoff: datetime,
    *,
    keep_failed: bool = False,
    include_unfinished: bool = False,
) -> tuple[list[RunSummary], int, int]:
    """The runs to remove (see the module's rules), and how many were kept only because they
    are unfinished or failed."""
    runs = {s.run_id: s for s in summaries}
    decided: dict[str, bool] = {}
    held = {"unfinished": 0, "failed": 0}

    def protected(s: RunSummary) -> str | None:
        if s.status == "unfinished" and not include_unfinished:
            return "unfinished"
        if s.status == "failed" and keep_failed:
            return "failed"
        return None

    def goes(run_id: str, seen: frozenset[str]) -> bool:
        if run_id in decided:
            return decided[run_id]
        s = runs[run_id]
        parent = s.parent_run_id
        if parent is not None and parent in runs and parent not in seen:
            result = goes(parent, seen | {run_id}) and protected(s) is None
        else:
            when = s.started if s.status == "unfinished" else s.ended
            old = when is not None and when < cutoff
            why = protected(s)
            if old and why is not None:
                held[why] += 1
            result = old and why is None
        decided[run_id] = result
        return result

    chosen = [s for s in runs.values() if goes(s.run_id, frozenset({s.run_id}))]
    chosen.sort(key=lambda s: (s.ended or s.started or cutoff, s.run_id))
    return chosen, held["unfinished"], held["failed"]


def prune(
    location: str | os.PathLike[str],
    older_than: str | float | timedelta,
    *,
    keep_failed: bool = False,
    dry_run: bool = False,
    include_unfinished: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    now: float | None = None,
) -> PruneResult:
    """Remove the runs in ``location`` (a SQLite database or a file-sink folder) that ended
    more than ``older_than`` ago (an age such as ``"30d"``, seconds, or a timedelta), with
    their child runs. ``dry_run`` removes nothing and says what would go."""
    if batch_rows < 1:
        raise ConfigError(f"batch_rows: must be > 0, got {batch_rows!r}")
    cutoff = _cutoff(older_than, now)
    path = Path(location)
    if path.is_file():
        _check_database(path)
    with open_store(path) as store:
        summaries = store.list_runs(limit=1 << 62)
    chosen, unfinished, failed = choose(
        summaries, cutoff, keep_failed=keep_failed, include_unfinished=include_unfinished
    )
    result = PruneResult(
        os.fspath(location),
        cutoff,
        dry_run,
        chosen,
        sum(s.record_count for s in chosen),
        kept_unfinished=unfinished,
        kept_failed=failed,
    )
    ids = [s.run_id for s in chosen]
    if path.is_dir():
        _prune_folder(path, ids, result)
    else:
        _prune_database(path, ids, result, batch_rows)
    return result


def _check_database(path: Path) -> None:
    try:
        with sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path}: cannot be read as a SQLite database: {exc}") from None
    if "traces" not in names:
        raise ConfigError(
            f"{path}: table traces: not found, this is not a workflow-traces database"
        )


def _prune_folder(base: Path, run_ids: list[str], result: PruneResult) -> None:
    from workflow_traces.exporters.file import run_dir

    for run_id in run_ids:
        folder = run_dir(base, run_id)
        for root, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):  # a file removed meanwhile
                    result.bytes_freed += os.lstat(os.path.join(root, name)).st_size
        if not result.dry_run:
            shutil.rmtree(folder, ignore_errors=True)


def _prune_database(path: Path, run_ids: list[str], result: PruneResult, batch_rows: int) -> None:
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free_before = conn.execute("PRAGMA freelist_count").fetchone()[0]
        spans = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace_spans'"
        ).fetchone()
        for start in range(0, len(run_ids), _RUNS_PER_STATEMENT):
            chunk = run_ids[start : start + _RUNS_PER_STATEMENT]
            marks = ",".join("?" * len(chunk))
            if result.dry_run:
                estimate = conn.execute(
                    "SELECT COALESCE(SUM(LENGTH(record_id) + LENGTH(message) + LENGTH(run_id)"  # noqa: S608
                    f" + LENGTH(detail) + 64), 0) FROM traces WHERE run_id IN ({marks})",
                    chunk,
                ).fetchone()[0]
                result.bytes_freed += int(estimate)
                continue
            sql = (
                "DELETE FROM traces WHERE seq IN (SELECT seq FROM traces"  # noqa: S608
                f" WHERE run_id IN ({marks}) LIMIT ?)"
            )
            while True:
                conn.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for a writer's turn
                began = time.perf_counter()
                try:
                    deleted = conn.execute(sql, [*chunk, batch_rows]).rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                held = (time.perf_counter() - began) * 1000
                result.transactions += 1
                result.longest_transaction_ms = max(result.longest_transaction_ms, held)
                if deleted < batch_rows:
                    break
            if spans:  # the runs' rows of trace_spans (schema version 4): one a scope
                conn.execute(f"DELETE FROM trace_spans WHERE run_id IN ({marks})", chunk)  # noqa: S608
        if not result.dry_run:
            free_after = conn.execute("PRAGMA freelist_count").fetchone()[0]
            result.bytes_freed = max(0, free_after - free_before) * page_size
    finally:
        conn.close()
