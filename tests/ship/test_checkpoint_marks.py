"""The checkpoint's marks: the record id at a position, kept few and reaching back."""

from __future__ import annotations

from typing import Any

from workflow_traces.shipping.checkpoint import remember
from workflow_traces.shipping.source import ALL


def test_a_run_keeps_one_mark_and_everything_keeps_a_thinned_few() -> None:
    marks: dict[str, list[list[Any]]] = {}
    for seq in range(1, 1001):
        remember(marks, ALL, seq * 10, f"id-{seq}")
        remember(marks, "run-1", seq, f"r-{seq}")
    assert marks["run-1"] == [[1000, "r-1000"]]
    anchors = marks[ALL]
    seqs = [a[0] for a in anchors]
    assert len(anchors) <= 32 and seqs == sorted(seqs)
    assert anchors[-1] == [10_000, "id-1000"]
    assert seqs[0] < 1000  # an old mark is kept to fall back on
    # The newest sixteen are the last sixteen batches.
    assert seqs[-16:] == [s * 10 for s in range(985, 1001)]


def test_a_position_moved_back_replaces_its_later_marks() -> None:
    marks: dict[str, list[list[Any]]] = {}
    remember(marks, ALL, 10, "a")
    remember(marks, ALL, 20, "b")
    remember(marks, ALL, 20, "b2")
    assert marks[ALL] == [[10, "a"], [20, "b2"]]
