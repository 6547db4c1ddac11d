"""Adapters that trace workflow runners: plain Python, Prefect and the built-in DAG runner."""
