"""Prefect tasks: one per step in ``stageflow.steps``, thin, retried for transient faults only."""
