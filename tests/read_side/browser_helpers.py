"""A real headless Chromium (Debian's, at /usr/bin/chromium) driven by playwright-python, and
the viewer served by the real command (`workflow-traces ui LOCATION --port 0`).

No browser is downloaded (``playwright install`` is never run): playwright drives the system's
Chromium through ``executable_path``. When Chromium or playwright is missing, the browser tests
fail with CI=true (.ci/run installs Chromium) and skip elsewhere, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TRACE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_browser() -> None:
    """Fail (CI=true) or skip (elsewhere) when the browser or its driver is missing."""
    problem = None
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (the dev extra has it)"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests need a browser on CI: {problem}")
    pytest.skip(problem)


@contextmanager
def browser_page() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            page.errors = errors  # type: ignore[attr-defined]
            yield page
            context.close()
        finally:
            browser.close()


@contextmanager
def viewer(location: Path | str) -> Iterator[str]:
    """`workflow-traces ui LOCATION --port 0` running; yields the URL it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    with subprocess.Popen(
        [sys.executable, "-m", "workflow_traces.cli.main", "ui", str(location), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.match(r"workflow-traces viewer: (http://127\.0\.0\.1:\d+/) ", line)
            assert match, (line, proc.stderr.read() if proc.stderr else "")
            yield match.group(1)
        finally:
            proc.terminate()
            proc.wait(10)
