"""Calling a DAG stage's callable: which keywords it takes (read once, when the Workflow is
made), and one attempt of it, sync or async or a ``command``, bounded by the stage's
``timeout``."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._dag_command import Command
from ._dag_model import Stage, StageTimeoutError

__all__ = ["_Call", "_call", "_inspect"]


@dataclass(frozen=True)
class _Call:
    """How to call a stage's callable: which keywords it takes, and which it must have."""

    fn: Callable[..., Any]
    names: frozenset[str]
    required: frozenset[str]
    var_kw: bool
    is_async: bool


def _inspect(fn: Callable[..., Any]) -> _Call | str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return _Call(fn, frozenset(), frozenset(), True, inspect.iscoroutinefunction(fn))
    names: set[str] = set()
    required: set[str] = set()
    var_kw = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.kind is p.POSITIONAL_ONLY:
            if p.default is p.empty:
                return f"its parameter {p.name!r} is positional-only; stages take keywords"
        else:
            names.add(p.name)
            if p.default is p.empty:
                required.add(p.name)
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async __call__ on an instance
    )
    return _Call(fn, frozenset(names), frozenset(required), var_kw, is_async)


def _call(call: _Call, kwargs: dict[str, Any], st: Stage) -> Any:
    if isinstance(call.fn, Command):  # its own timeout kills the child process
        return call.fn.run(st.timeout)
    if call.is_async:
        coro = call.fn(**kwargs)
        if st.timeout is None:
            return asyncio.run(coro)

        async def bounded() -> Any:
            try:
                return await asyncio.wait_for(coro, st.timeout)
            except TimeoutError:
                raise StageTimeoutError(
                    f"stage {st.name!r} did not finish within {st.timeout}s and was cancelled"
                ) from None

        return asyncio.run(bounded())
    if st.timeout is None:
        return call.fn(**kwargs)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call.fn(**kwargs)
        except BaseException as exc:
            box["error"] = exc

    ctx = contextvars.copy_context()
    worker = threading.Thread(
        target=ctx.run, args=(target,), name=f"dag-stage-{st.name}", daemon=True
    )
    worker.start()
    worker.join(st.timeout)
    if worker.is_alive():
        raise StageTimeoutError(
            f"stage {st.name!r} did not finish within {st.timeout}s; it was left running in "
            "the background (Python cannot stop a thread)"
        )
    if "error" in box:
        raise box["error"]
    return box.get("value")
