"""The human approval of a production change: the flow suspends (no process or pod is held) and
the Prefect UI shows a form; ``stageflow approve`` / ``reject`` resume it with the same fields.

On every resume the flow re-runs from the top and ``suspend_flow_run`` hands back the input given
for each pause key in turn. A decision that breaks a rule (not an approver, the requester
approving alone, no reason) is refused in the log and the run suspends again under the next key
until the deadline, so a wrong click in the UI never releases anything and never loses the request.

Deployments of these flows carry no deployment concurrency limit: Prefect releases a deployment
slot when a run leaves Running, and an in-process pause holding one crashes (a known Prefect issue).
Suspending exits the process instead, and the prod lock is a global concurrency limit taken only
after approval, around merge + rollout.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

from prefect import get_run_logger
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from stageflow.errors import TerminalError
from stageflow.release import Decision, approval_problems

MAX_DECISIONS = 20


class ApprovalForm(RunInput):
    """The form in the Prefect UI (its description shows the release summary)."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject this production change")
    approver: str = Field(description="your name as listed in the approvers of the app "
                                      "(its app.yaml in the infrastructure repo)")
    reason: str = Field(description="why; it goes into the release record")


class ApprovalExpired(TerminalError):
    """Nobody decided before the deadline."""


def deadline(timeout_seconds: int) -> datetime:
    """The request's deadline, counted from when the run was created (stable across resumes)."""
    start = flow_run.scheduled_start_time or datetime.now(timezone.utc)
    return start + timedelta(seconds=timeout_seconds)


def await_decision(description: str, *, app: str, approvers: list[str], requested_by: str,
                   until: datetime) -> Decision:
    """Suspend until an approver decides; refused decisions are logged and asked again."""
    from prefect.flow_runs import suspend_flow_run

    log = get_run_logger()
    for attempt in range(1, MAX_DECISIONS + 1):
        remaining = int((until - datetime.now(timezone.utc)).total_seconds())
        # Call even when the deadline passed: an answer already given under this key is returned;
        # otherwise the run suspends for a second and the server expires it.
        answer = suspend_flow_run(wait_for_input=ApprovalForm.with_initial_data(description=description),
                                  timeout=max(1, remaining), key=f"approval-{attempt}")
        decision = Decision(decision=answer.decision, approver=answer.approver.strip(), reason=answer.reason.strip())
        problems = approval_problems(decision, app=app, approvers=approvers, requested_by=requested_by)
        if not problems:
            log.info("%s by %s: %s", "approved" if decision.decision == "approve" else "rejected",
                     decision.approver, decision.reason)
            return decision
        log.warning("decision %d refused (%s by %r): %s; waiting for an approver until %s", attempt,
                    decision.decision, decision.approver, "; ".join(str(p) for p in problems), until.isoformat())
        if remaining <= 0:
            raise ApprovalExpired(f"no valid decision before the deadline {until.isoformat()}")
    raise TerminalError(f"{MAX_DECISIONS} decisions were refused; the request is closed: start a new one")
