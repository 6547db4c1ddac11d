"""Real Prefect 3 on its temporary local server, for the Prefect adapter's tests.

One server for the whole session (``prefect_test_harness``: a SubprocessASGIServer on 127.0.0.1
with a throw-away SQLite database). Settings for the session:

- ``PREFECT_HOME``: a temporary folder, so nothing is written under ~/.prefect;
- ``PREFECT_SERVER_ANALYTICS_ENABLED=false``: the server would otherwise try to reach the
  internet;
- ``flows.heartbeat_frequency = None``: no heartbeat thread per flow run (about 1 s less per
  run). The environment cannot express None for this setting (PREFECT_FLOWS_HEARTBEAT_FREQUENCY
  must be an int >= 30), so it is set with ``prefect.settings.temporary_settings``.

Warnings: ``filterwarnings = error`` stays on. The only filters are the ``pytestmark`` entries in
each test module (see ``PREFECT_WARNING_FILTERS`` below), for warnings Prefect itself emits.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow_traces import Run

# Before anything imports prefect: its settings are read on import.
_HOME = tempfile.mkdtemp(prefix="wt-prefect-home-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

# The test modules import their helpers from prefect_helpers.py next to this file.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[str]:
    """Prefect's temporary local server, with the session settings above. Yields its API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.testing.utilities import prefect_test_harness
    from workflow_traces.integrations.prefect import shutdown

    updates: dict[Any, Any] = {
        "home": _HOME,
        "server.analytics_enabled": False,
        "flows.heartbeat_frequency": None,
    }
    try:
        with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=120):
            yield str(PREFECT_API_URL.value())
    finally:
        shutdown()
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test runs in its own folder, its TRACE_* variables naming a file folder and a SQLite
    database there (what ``@traced`` without extras writes to), and ends with the adapter's
    sinks closed and its run registry empty."""
    from workflow_traces.integrations.prefect import shutdown

    from workflow_traces.settings.model import TraceSettings

    for name in list(os.environ):
        if name.upper().startswith("TRACE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRACE_HANDLERS__0__TYPE", "file")
    monkeypatch.setenv("TRACE_HANDLERS__0__PATH", str(tmp_path / "files"))
    monkeypatch.setenv("TRACE_HANDLERS__1__TYPE", "sqlite")
    monkeypatch.setenv("TRACE_HANDLERS__1__PATH", str(tmp_path / "traces.db"))
    monkeypatch.setenv("TRACE_FAIL_SILENTLY", "false")
    monkeypatch.chdir(tmp_path)
    TraceSettings.clear_cache()
    yield
    shutdown()
    TraceSettings.clear_cache()


@pytest.fixture
def explicit_sinks(tmp_path: Path) -> dict[str, Any]:
    """Extras for ``traced(extras=...)``: a file folder and a SQLite database of their own."""
    return {
        "trace_type": "multi",
        "handlers": [
            {"type": "file", "path": str(tmp_path / "explicit" / "files")},
            {"type": "sqlite", "path": str(tmp_path / "explicit" / "traces.db")},
        ],
        "fail_silently": False,
    }


@pytest.fixture
def read_run(tmp_path: Path) -> Callable[..., Run]:
    """Flushes the adapter's sinks, then reads one run back from the SQLite store after checking
    the file store holds the same records. ``where="explicit"`` reads the explicit sinks."""
    from prefect_helpers import read_both
    from workflow_traces.integrations.prefect import flush

    def read(run_id: str, where: str = "") -> Run:
        flush(30)
        base = tmp_path / where if where else tmp_path
        return read_both(base / "traces.db", base / "files", run_id)

    return read
