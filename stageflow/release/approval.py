"""The approval rules of a production release, shared by the UI form (checked by the flow when it
resumes) and ``stageflow approve`` / ``stageflow reject`` (checked before resuming).

- Only a person listed in the app's ``approvers`` (``apps/<app>/app.yaml``) may approve or reject.
- The person who requested the release may not approve it alone: another approver must. They may
  reject (withdraw) their own request.
- Every decision carries a reason; it goes into the release record.

Prefect's open-source server has no user accounts, so the approver is the name typed into the form
(or ``--as`` on the command line). Who can reach the Prefect API at all is what protects it:
``PREFECT_API_AUTH_STRING`` on a self-hosted server, or Prefect Cloud's own users.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stageflow.errors import Problem, ValidationFailed

__all__ = ["Decision", "approval_problems", "may_decide", "platform_approvers"]


class Decision(BaseModel):
    """What an approver answered; the same fields as the form in the Prefect UI."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    decision: Literal["approve", "reject"]
    approver: str = Field(max_length=200, pattern=r"^[^\r\n]*$")
    reason: str = Field(max_length=2000)


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def approval_problems(decision: Decision, *, app: str, approvers: list[str], requested_by: str) -> list[Problem]:
    """Every rule ``decision`` breaks (empty when it may be applied)."""
    problems: list[Problem] = []
    if not decision.reason.strip():
        problems.append(Problem("reason", "must not be empty: say why, it goes into the release record"))
    who = decision.approver.strip()
    if not who:
        problems.append(Problem("approver", "must not be empty: your name as listed in the app's approvers"))
        return problems
    if not approvers:
        problems.append(Problem("approver", f"app {app!r} lists no approvers: add them to apps/{app}/app.yaml"))
    elif not any(_same_person(who, a) for a in approvers):
        problems.append(Problem("approver", f"{who!r} is not an approver of app {app!r} "
                                            f"(approvers: {', '.join(approvers)})"))
    if decision.decision == "approve" and _same_person(who, requested_by):
        problems.append(Problem("approver", f"{who!r} requested this release and may not approve it alone: "
                                            "another approver must"))
    return problems


def may_decide(decision: Decision, *, app: str, approvers: list[str], requested_by: str) -> None:
    """Raise ValidationFailed naming every broken rule."""
    if problems := approval_problems(decision, app=app, approvers=approvers, requested_by=requested_by):
        raise ValidationFailed(problems, summary=f"{decision.decision} refused")


def platform_approvers(apps) -> list[str]:
    """Who approves a change shared by every app (the cluster): everyone who approves for some app."""
    return sorted({who for app in apps for who in app.approvers})
