"""Process-wide lifecycle of the sinks' channels, after OpenTelemetry's batch processor.

- One atexit hook flushes every live channel under one shared deadline
  (:data:`EXIT_FLUSH_TIMEOUT`), then closes them. It is registered with the first channel and
  removed with the last.
- :func:`exiting` turns true once the interpreter runs its exit hooks: sink failures are then
  reported, not raised (an exception in ``logging.shutdown`` stops it before it flushes the
  other handlers).
- After ``os.fork()`` the child clears the parent's pending records and starts its own
  workers; a ``multiprocessing`` child, which ends with ``os._exit()`` and skips atexit, gets
  a finalizer that runs the same exit flush.

A channel takes part through :func:`register` / :func:`unregister` and the small
:class:`Managed` interface below; this module does not import the channel.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

__all__ = [
    "EXIT_FLUSH_TIMEOUT",
    "Managed",
    "exiting",
    "flush_all",
    "register",
    "unregister",
]

#: Seconds that the exit hook waits, in all, for every sink to write what it holds.
EXIT_FLUSH_TIMEOUT = 10.0


class Managed(Protocol):
    """What the exit hook and the fork handler need of a channel."""

    @property
    def closed(self) -> bool: ...

    def request_flush(self) -> Any:
        """Queue a flush marker behind what is queued now; returns it for :meth:`wait`."""
        ...

    def wait(self, marker: Any, timeout: float | None) -> bool:
        """Wait until ``marker`` is reached; False if ``timeout`` ran out first."""
        ...

    def close(self, timeout: float | None) -> None: ...

    def after_fork_in_child(self) -> None:
        """In a forked child: forget the parent's records and start a worker of its own."""
        ...


_live: weakref.WeakSet[Managed] = weakref.WeakSet()
_live_lock = threading.Lock()
_hook_registered = False
_exiting = False


def exiting() -> bool:
    """True once the interpreter runs its exit hooks. Sink failures are then reported, not
    raised: an exception in ``logging.shutdown`` stops it before it flushes the other
    handlers."""
    return _exiting


def _mark_exiting() -> None:
    global _exiting
    _exiting = True


# Registered at import, so it runs after the flush hook below and before logging.shutdown
# (atexit runs hooks last-registered first; logging registered its own when imported).
atexit.register(_mark_exiting)


def register(ch: Managed) -> None:
    """A new channel: flushed and closed at exit, restarted in a forked child."""
    global _hook_registered
    with _live_lock:
        _live.add(ch)
        if not _hook_registered:
            atexit.register(_at_exit)
            _hook_registered = True
            _mp_exit_hook()  # a channel made inside a multiprocessing child


def unregister(ch: Managed) -> None:
    """A closed channel; the exit hook goes with the last one."""
    global _hook_registered
    with _live_lock:
        _live.discard(ch)
        if not _live and _hook_registered:
            atexit.unregister(_at_exit)
            _hook_registered = False


_M = TypeVar("_M", bound=Managed)


def flush_all(channels: Iterable[_M], timeout: float | None) -> list[_M]:
    """Flush several channels under one shared deadline; returns those that ran out of time."""
    markers = [(ch, ch.request_flush()) for ch in channels if not ch.closed]
    deadline = None if timeout is None else time.monotonic() + timeout
    late = []
    for ch, marker in markers:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not ch.wait(marker, remaining):
            late.append(ch)
    return late


def _at_exit() -> None:
    with _live_lock:
        channels = list(_live)
    deadline = time.monotonic() + EXIT_FLUSH_TIMEOUT
    flush_all(channels, EXIT_FLUSH_TIMEOUT)
    for ch in channels:
        ch.close(max(0.0, deadline - time.monotonic()))


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    for ch in list(_live):
        ch.after_fork_in_child()
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        # A multiprocessing child ends with os._exit(): no atexit. Its bootstrap clears the
        # finalizers inherited from the parent, then runs the after-fork hooks: register ours.
        mp_util.register_after_fork(_MP_TOKEN, _mp_exit_hook)


class _Token:
    """Something for multiprocessing's after-fork registry to hold a weak reference to."""


_MP_TOKEN = _Token()
_mp_hook_pid = -1


def _mp_exit_hook(_token: object = None) -> None:
    """Flush every sink when a multiprocessing child exits (it skips atexit hooks)."""
    global _mp_hook_pid
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None or _mp_hook_pid == os.getpid():
        return
    _mp_hook_pid = os.getpid()
    mp_util.Finalize(None, _at_exit, exitpriority=100)


os.register_at_fork(after_in_child=_after_fork_in_child)
