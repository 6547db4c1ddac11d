"""Shipping a local trace to any sink after the fact (``workflow-traces ship``)."""

from workflow_traces.shipping.shipper import ShipError, ShipResult, ship

__all__ = ["ShipError", "ShipResult", "ship"]
