"""Sources for the ship tests: real SQLite databases and file-sink folders written by the
sinks themselves, and LocalReceivers on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from local_services.receiver import LocalReceiver

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def receivers() -> Iterator[Callable[..., LocalReceiver]]:
    made: list[LocalReceiver] = []

    def make(service: str = "generic", **kwargs: Any) -> LocalReceiver:
        receiver = LocalReceiver(service, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()
