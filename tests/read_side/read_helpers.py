"""The places a read-side test writes its runs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Places:
    """Where a test's runs are written, and the store locations reading them."""

    files: Path
    db: Path
    es_url: str
    extras: dict[str, Any]

    @property
    def locations(self) -> dict[str, str]:
        return {"file": str(self.files), "sqlite": str(self.db), "es": f"{self.es_url}/traces"}
