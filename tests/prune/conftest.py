"""The prune tests' helpers live in prune_helpers.py, importable from here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
