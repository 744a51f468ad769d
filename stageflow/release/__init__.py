"""Production releases: who may approve, what the approver is shown, what changed in the source.

Pure logic without Prefect; the release flows (``flows/release_to_prod.py``, ``flows/rollback.py``)
and the CLI (``stageflow approve``) share it, so the UI form and the command line enforce exactly
the same rules.
"""
from stageflow.release.approval import Decision, approval_problems, may_decide

__all__ = ["Decision", "approval_problems", "may_decide"]
