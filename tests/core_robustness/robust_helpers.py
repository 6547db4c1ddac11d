"""Helpers for the core's robustness tests (imported by the test modules of this folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workflow_traces import open_store

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def multi_extras(base: Path | str, **more: Any) -> dict[str, Any]:
    """A "multi" config with one file and one SQLite sink under ``base``."""
    base = Path(base)
    return {
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": str(base / "files")},
            {"type": "sqlite", "path": str(base / "traces.db")},
        ],
        **more,
    }


def sink_locations(base: Path | str) -> list[Path]:
    base = Path(base)
    return [base / "files", base / "traces.db"]


def record_ids(location: Path | str, run_id: str) -> Counter[str]:
    """How many times each record_id of ``run_id`` is stored at ``location`` (via open_store).

    The file store drops repeated ids when reading, so for files the raw JSON lines are also
    counted (see ``raw_file_ids``)."""
    with open_store(location) as store:
        try:
            run = store.get_run(run_id)
        except KeyError:
            return Counter()
        return Counter(r.record_id for r in run.records)


def raw_file_ids(run_folder: Path) -> Counter[str]:
    """Record ids counted straight from a run folder's traces.jsonl, duplicates included (the
    store drops repeated ids when reading). Reads every layout: one JSON object a line, or a
    header line naming the fields followed by one JSON array a record, whose id is whole
    (version 1) or a number that the latest id_prefix line completes (version 2)."""
    import orjson

    counts: Counter[str] = Counter()
    index: int | None = None
    prefix: str | None = None
    with open(run_folder / "traces.jsonl", "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            value = orjson.loads(line)
            if isinstance(value, dict) and "fields" in value:
                index = value["fields"].index("record_id")
            elif isinstance(value, dict) and "id_prefix" in value:
                prefix = value["id_prefix"]  # version 2: numbered ids after it take this prefix
            elif isinstance(value, dict):
                counts[value["record_id"]] += 1
            else:
                assert index is not None, "a record line before the header"
                rid = value[index]
                if isinstance(rid, int):
                    assert prefix is not None, "a numbered record id before any id_prefix line"
                    rid = f"{prefix}{rid}"
                counts[rid] += 1
    return counts


def sqlite_ids(db: Path, run_id: str) -> Counter[str]:
    """Record ids of ``run_id`` counted straight from the SQLite table, with plain SQL."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT record_id FROM traces WHERE run_id = ?", (run_id,))
        return Counter(r[0] for r in rows)
    finally:
        conn.close()


def messages(location: Path | str, run_id: str) -> list[str]:
    with open_store(location) as store:
        return [r.message for r in store.get_run(run_id).records]


def run_script(
    code: str,
    cwd: Path,
    *,
    timeout: float = 60,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the project's venv) with ``cwd`` as working folder."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"script failed ({proc.returncode}):\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@contextmanager
def start_script(code: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """Start ``code`` in a fresh interpreter; kill it on the way out if it still runs."""
    proc = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(code)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    with proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def files_outside(root: Path, allowed: Path) -> list[Path]:
    """Every path under ``root`` that is not ``allowed`` or inside it."""
    allowed = allowed.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name).resolve()
            if p != allowed and allowed not in p.parents:
                out.append(p)
    return out
