"""The flow of test_prefect_dask, in a module of its own: Dask's worker processes import it by
name (a test module is not importable there; functions pickled by value drag in their globals).
"""

from __future__ import annotations

import logging
import os

from prefect import flow, get_run_logger, task
from workflow_traces.integrations.prefect import traced

__all__ = ["LIB_LINES", "RUN_LINES", "TASKS", "on_dask"]

TASKS, RUN_LINES, LIB_LINES = 20, 50, 10


@task
@traced
def work(i: int) -> int:
    logger = get_run_logger()
    for n in range(RUN_LINES):
        logger.info("run line %d-%d", i, n)
    lib = logging.getLogger("dasklib.work")
    lib.setLevel(logging.INFO)
    for n in range(LIB_LINES):
        lib.info("lib line %d-%d", i, n)
    return os.getpid()


def _runner() -> object:
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": 2,
            "processes": True,
            "threads_per_worker": 2,
            "dashboard_address": None,
        },
    )


@flow(name="on-dask", task_runner=_runner())  # type: ignore[arg-type]
@traced
def on_dask() -> list[int]:
    futures = work.map(range(TASKS))
    return [f.result() for f in futures]
