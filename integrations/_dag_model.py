"""The DAG runner's model: the definitions (``Stage``, ``Job``), the results of a run
(``StageResult``, ``JobResult``, ``WorkflowResult``), the errors it raises, and
``resolve_callable`` for stages named by import path. See ``dag`` for the semantics."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workflow_traces import ConfigError

__all__ = [
    "Job",
    "JobResult",
    "Stage",
    "StageResult",
    "StageTimeoutError",
    "WorkflowDefinitionError",
    "WorkflowFailed",
    "WorkflowResult",
    "resolve_callable",
]


class WorkflowDefinitionError(ConfigError):
    """The workflow definition is invalid; the message lists every problem, one a line."""


class StageTimeoutError(TimeoutError):
    """A stage attempt ran longer than its ``timeout``."""


def resolve_callable(path: str) -> Callable[..., Any]:
    """The object named by ``"package.module:function"`` (or ``"module:Class.method"``)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'package.module:function', got {path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} (from {path!r}): {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{path!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Stage:
    """One step of a job: ``fn`` is a callable, or an import path ``"pkg.mod:func"``.

    ``retries``: extra attempts after a failure; ``timeout``: seconds per attempt;
    ``retry_delay``: seconds to wait between attempts.
    """

    name: str
    fn: Callable[..., Any] | str
    retries: int = 0
    timeout: float | None = None
    retry_delay: float = 0.0


@dataclass(frozen=True)
class Job:
    """Ordered stages, run once every job in ``needs`` has succeeded."""

    name: str
    stages: Sequence[Stage]
    needs: Sequence[str] = ()

    def __post_init__(self) -> None:
        needs = (self.needs,) if isinstance(self.needs, str) else tuple(self.needs or ())
        object.__setattr__(self, "needs", needs)
        object.__setattr__(self, "stages", tuple(self.stages or ()))


@dataclass
class StageResult:
    """How a stage ended: ``status`` (succeeded, failed, skipped, cancelled), ``duration`` in
    seconds over all attempts, ``attempts`` made, ``output`` (its return value) and ``error``."""

    name: str
    status: str
    duration: float = 0.0
    attempts: int = 0
    output: Any = None
    error: BaseException | None = None


@dataclass
class JobResult:
    """How a job ended, with its stages' results by name."""

    name: str
    status: str
    duration: float = 0.0
    stages: dict[str, StageResult] = field(default_factory=dict)
    error: BaseException | None = None


@dataclass
class WorkflowResult:
    """How a run ended: ``run_id``, ``status`` (succeeded or failed), ``jobs`` by name, and
    ``locations``: the file-sink folders and SQLite databases it was traced to (for
    ``open_store``)."""

    name: str
    run_id: str
    status: str
    duration: float
    jobs: dict[str, JobResult]
    locations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


class WorkflowFailed(Exception):
    """Ends the workflow scope as failed when a job did not succeed (``run`` catches it: it
    never reaches the caller)."""
