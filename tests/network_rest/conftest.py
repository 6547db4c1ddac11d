"""Fixtures for the REST sink tests: real HTTP receivers and moto's server, all on 127.0.0.1."""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from local_services import LocalReceiver

from workflow_traces import RestAPIHandler

sys.path.insert(0, str(Path(__file__).parent))

_names = itertools.count()


@pytest.fixture
def receivers() -> Iterator[Callable[..., LocalReceiver]]:
    """Make LocalReceivers; each is stopped after the test, and the bodies it got are checked
    with the service's own published code (see conformance.py)."""
    made: list[LocalReceiver] = []

    def make(service: str = "generic", **kwargs: Any) -> LocalReceiver:
        receiver = LocalReceiver(service, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()
    # Every OTLP and Datadog body the test's sinks sent, judged by the service's own code.
    from conformance import check_body

    for receiver in made:
        for req in receiver.requests:
            check_body(receiver.service, req.body)


@pytest.fixture
def sinks() -> Iterator[Callable[..., tuple[RestAPIHandler, logging.Logger]]]:
    """Make a RestAPIHandler and a private logger feeding it; both cleaned up after the test."""
    made: list[tuple[RestAPIHandler, logging.Logger]] = []

    def make(**kwargs: Any) -> tuple[RestAPIHandler, logging.Logger]:
        kwargs.setdefault("run_id", f"run-{next(_names)}")
        handler = RestAPIHandler(**kwargs)
        logger = logging.getLogger(f"tests.network_rest.{next(_names)}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((handler, logger))
        return handler, logger

    yield make
    for handler, logger in made:
        logger.removeHandler(handler)
        if not handler.channel.closed:
            handler.fail_silently = True
            handler.close(timeout=1)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's threaded server (CloudWatch Logs among others) on a free port of 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
