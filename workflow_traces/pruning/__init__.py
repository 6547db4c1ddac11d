"""Removing old runs from a local trace (``workflow-traces prune``)."""

from workflow_traces.pruning.prune import PruneResult, prune

__all__ = ["PruneResult", "prune"]
