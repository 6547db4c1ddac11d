"""Running a local test server from the command line until it is interrupted."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["serve_until_interrupted"]


def serve_until_interrupted(stop: Callable[[], None]) -> None:
    """Wait (the server runs on its own threads) until Ctrl-C, then call ``stop``."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
