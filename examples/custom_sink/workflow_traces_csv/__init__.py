"""A sink type of its own for workflow-traces: ``{"type": "csv", "path": "runs.csv"}`` appends
one CSV row per record to ``path``.

Three parts, each small: the config model (the keys users give), the exporter (writes a batch),
and the ``Sink`` that names them, registered in pyproject.toml under the entry-point group
``workflow_traces.sinks``. Everything else (the buffer, the worker thread, batching, retries,
``health()``, ``config check``) is the pipeline's.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from workflow_traces import Exporter, PermanentError, Record
from workflow_traces.exporters import Sink, SinkConfig

__all__ = ["SINK", "CsvConfig", "CsvExporter"]

COLUMNS = ("time", "level", "run_id", "record_id", "message")


class CsvConfig(SinkConfig):
    """The keys of a "csv" sink, besides those every sink takes (buffer_size, level, ...)."""

    type: Literal["csv"] = "csv"
    path: str = Field(default="./logs/traces.csv", description="the CSV file to append to")
    buffer_size: int = Field(default=200, gt=0, description="records per write")

    def describe(self) -> str:
        return f"csv {self.path}"


class CsvExporter(Exporter):
    """Appends each batch to one CSV file, a header first when the file is new."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = f"csv:{path}"

    @classmethod
    def from_config(cls, cfg: CsvConfig) -> CsvExporter:
        folder = os.path.dirname(cfg.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        return cls(cfg.path)

    def export(self, batch: Sequence[Record]) -> None:
        try:
            fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        except IsADirectoryError as exc:  # writing again cannot help
            raise PermanentError(f"{self.path} is a folder") from exc
        with fh:
            writer = csv.writer(fh)
            if fh.tell() == 0:
                writer.writerow(COLUMNS)
            for rec in batch:
                when = datetime.fromtimestamp(rec.time_ns / 1e9, UTC).isoformat()
                writer.writerow((when, rec.level, rec.run_id, rec.record_id, rec.message))
        # Any other OSError (a full disk) propagates: the pipeline retries it.


SINK = Sink("csv", CsvConfig, exporter=CsvExporter.from_config, summary="one CSV row per record")
