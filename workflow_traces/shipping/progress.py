"""The progress bar of ``ship``, through tqdm when it is installed (``pip install
workflow-traces[progress]``): records done, records/s and the time left, on stderr."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from workflow_traces.text import escape_terminal

__all__ = ["Progress"]


class Progress:
    """A bar over ``total()`` records (counted only when the bar is shown), shown when
    ``enabled`` (None: when stderr is a terminal) and tqdm can be imported; otherwise it does
    nothing."""

    def __init__(self, total: Callable[[], int], label: str, enabled: bool | None) -> None:
        self._bar: Any = None
        if enabled is None:
            enabled = sys.stderr.isatty()
        if not enabled:
            return
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            return
        self._bar = tqdm(
            total=total(),
            unit="rec",
            unit_scale=True,
            desc=escape_terminal(label)[:40],
            file=sys.stderr,
            leave=True,
        )

    def update(self, count: int) -> None:
        if self._bar is not None and count:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
