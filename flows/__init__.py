"""Prefect flows: the DAGs of steps, in order, behind their gates (concurrency, approval)."""
