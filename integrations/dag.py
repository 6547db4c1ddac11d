"""A minimal DAG runner: jobs of ordered stages, run in dependency order on a thread pool.

::

    from workflow_traces.integrations.dag import Job, Stage, Workflow

    def fetch(date): ...
    def clean(outputs): return len(outputs["fetch"])

    wf = Workflow("etl", jobs=[
        Job("extract", stages=[Stage("fetch", fetch, retries=2, timeout=30)]),
        Job("transform", stages=[Stage("clean", clean)], needs=["extract"]),
    ], max_workers=4)
    result = wf.run(params={"date": "2024-01-01"})
    result.status, result.jobs["transform"].stages["clean"].output

Semantics:

- A stage's callable is called with keyword arguments: the run's params it names, and
  ``outputs`` if it names it (or all of them, if it takes ``**kwargs``). ``outputs`` maps each
  earlier stage of the same job to its return value, and each job this job needs (directly or
  not) to a dict of that job's stage results.
- Jobs start once every job they need has succeeded; independent jobs run at once, up to
  ``max_workers``. A failed stage fails its job and skips the job's later stages; jobs that need
  a failed or skipped job are skipped; the others go on. The workflow fails if any job did not
  succeed. ``run`` returns the result; it raises only for bad params or sink settings, or when
  interrupted.
- ``retries``: a failed stage runs again, up to that many more times (each attempt is its own
  stage scope in the trace). ``timeout``: seconds an attempt may take. A sync callable runs in
  a helper thread that is left running when time is up (Python cannot stop a thread); an async
  callable is cancelled.
- Bad definitions are refused when the Workflow is made, before anything runs: duplicate
  names, unknown or cyclic ``needs``, bad retries/timeouts, callables that cannot take keyword
  arguments.
- ``command(...)`` as a stage's callable runs a command in a child process that joins the run:
  ``Stage("load", command(["python", "load.py"]))``. The child gets the stage's trace context
  (``context_env()``) with the rest of the environment, so ``get_trace()`` in it logs into the
  stage's run and trace, to the run's sinks. A non-zero exit status fails the stage
  (``subprocess.CalledProcessError``); ``timeout`` kills the child.
- Everything is traced through ``workflow_traces.integrations.plain``: the run is a workflow
  scope, each job a job scope, each attempt of a stage a stage scope. ``get_trace()`` inside a
  stage returns the run's trace stamped with its names.
"""

from __future__ import annotations

from ._dag_command import Command, command
from ._dag_model import (
    Job,
    JobResult,
    Stage,
    StageResult,
    StageTimeoutError,
    WorkflowDefinitionError,
    WorkflowFailed,
    WorkflowResult,
    resolve_callable,
)
from ._dag_workflow import Workflow, load_workflow

__all__ = [
    "Command",
    "Job",
    "JobResult",
    "Stage",
    "StageResult",
    "StageTimeoutError",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowFailed",
    "WorkflowResult",
    "command",
    "load_workflow",
    "resolve_callable",
]

# The public classes live in private modules; they report this module as theirs, so reprs,
# tracebacks and pickles name the module users import them from.
for _cls in (
    Command,
    Job,
    JobResult,
    Stage,
    StageResult,
    StageTimeoutError,
    Workflow,
    WorkflowDefinitionError,
    WorkflowFailed,
    WorkflowResult,
):
    _cls.__module__ = __name__
del _cls
