"""The worker's cost of redaction with the default keys and patterns, per record, on typical
records (the issue's budget: at most 1 µs). Figures, not assertions: the machine is shared.

Run alone (``python benchmarks/bench_redact.py``) or from ``benchmarks/run.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from workflow_traces.core.record import Record, RecordValues
from workflow_traces.pipeline.process import default_process
from workflow_traces.pipeline.redact import DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS, Redactor
from workflow_traces.pipeline.sample import Sampler

BATCH = 1000
ROUNDS = 200


def _records(
    secret_every: int = 0, extras_every: int = 10, snake: bool = False
) -> list[RecordValues]:
    """A batch like a workflow's: short messages with numbers in them, one record in
    ``extras_every`` with extras of its own, the others with the trace's (shared) extras."""
    shared = {"environment": "prod", "team": "data"}
    out = []
    for i in range(BATCH):
        message = f"processed item {i} of batch {i // 100} in {i % 97 * 0.13:.2f} ms"
        if snake and i % 10 == 0:
            message += f" (step load_{i}_rows)"
        if secret_every and i % secret_every == 0:
            message += " with Authorization: Bearer abcdef0123456789"
        extras = {"item": i, "path": f"/data/part-{i}.parquet"} if i % extras_every == 0 else shared
        rec = Record(
            time_ns=time.time_ns(), level="INFO", levelno=20, message=message, run_id="run-1",
            parent_run_id=None, workflow_name="wf", job_name="job", stage_name=None,
            filename="/app/flow.py", lineno=42, func_name="step", process=1234, thread=5678,
            host="host", record_id=10**15 + i, extras=extras,  # type: ignore[arg-type]
        )  # fmt: skip
        out.append(tuple(rec))
    return out


def _per_record_ns(fn: Callable[[list[RecordValues]], object], batch: list[RecordValues]) -> float:
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        fn(batch)
        times.append((time.perf_counter_ns() - t0) / len(batch))
    return statistics.median(times)


def rows() -> list[tuple[str, float]]:
    """(label, ns per record) for each case."""
    red = Redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS)
    sampler = Sampler({"DEBUG": 0.1, "INFO": 0.5})
    typical = _records()
    keep = sampler.keeps

    def sample(batch: list[RecordValues]) -> object:
        return [r for r in batch if keep(r)]

    def step(batch: list[RecordValues]) -> object:
        return default_process()(batch, _NoCounters())  # type: ignore[arg-type]

    return [
        ("redact, defaults, typical records", _per_record_ns(red.batch, typical)),
        ("redact, defaults, 1 in 10 snake_case", _per_record_ns(red.batch, _records(snake=True))),
        ("redact, defaults, 1 in 100 with a token", _per_record_ns(red.batch, _records(100))),
        ("redact, defaults, every record with extras", _per_record_ns(red.batch, _records(0, 1))),
        ("sample DEBUG 0.1 / INFO 0.5", _per_record_ns(sample, typical)),
        ("the default worker step (redaction)", _per_record_ns(step, typical)),
    ]  # fmt: skip


class _NoCounters:
    def left_out(self, sampled: int, limited: int) -> None: ...

    def fail(self, exc: BaseException, count: int) -> None:
        raise exc


def run(n: int = 0) -> list[tuple[str, float]]:
    """``benchmarks/run.py``'s rows: (label, µs per record). ``n`` is not used (the rows are
    per record, over batches of 1000)."""
    return [(label, ns / 1000) for label, ns in rows()]


def main() -> None:
    print("worker-side processing, per record (median of batches of 1000; budget 1 us):")
    for label, us in run():
        print(f"  {label:<46} {us:6.3f} us")


if __name__ == "__main__":
    main()
