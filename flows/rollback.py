"""``rollback``: put a service's prod stage back to the version it ran before, with the same
pull request, approval, rollout, verification and release record as a release.

The target is the newest successful prod release (or rollback) whose digest differs from what
Prod declares now and that never failed in prod.
"""
from __future__ import annotations

from prefect import flow

from flows.common import run_workspace, settings as load_platform
from flows.promotion import Promotion, ReleaseOutcome, promote
from stageflow.errors import TerminalError
from stageflow.requests import ReleaseRequest
from stageflow.spec import load_spec, namespace
from tasks.steps import infra_repo


@flow(name="rollback", log_prints=True, validate_parameters=True)
def rollback(app: str, service: str, requested_by: str, reason: str = "",
             approval_timeout_seconds: int | None = None) -> ReleaseOutcome:
    """Roll a service's prod stage back to its previous released version, after an approver approves.

    Args:
        app: the application, e.g. ``shop``.
        service: the service within the app, e.g. ``orders``.
        requested_by: who asks for the rollback; they may not approve it alone.
        reason: why, shown to the approvers.
        approval_timeout_seconds: how long approvers have; empty: the platform's ``approval_timeout_hours``.
    """
    ReleaseRequest(app, service, None, requested_by, approval_timeout_seconds, flow="rollback").validate()
    cfg = load_platform()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
        svc = spec.service(app, service)
        current = spec.version(app, service, "prod")
        if current is None:
            raise TerminalError(f"{app}/{service} has never been released to {namespace(app, 'prod')}: "
                                f"there is nothing to roll back")
        history = spec.release_history(app, service)
        target = next((r for r in reversed(history.succeeded())
                       if r.image.digest != current.image.digest and history.failed(r.image.digest) is None), None)
        if target is None:
            raise TerminalError(f"{app}/{service} has no earlier successful prod release to roll back to "
                                f"(prod runs {current.image.digest}; history: {len(history.releases)} records in "
                                f"apps/{app}/releases/{service}.yaml)")
        return promote(Promotion(
            kind="rollback", app=app, service=service, version=target.version, image=svc.image,
            digest=target.image.digest, tag=target.image.tag,
            source_commit=target.source.commit if target.source else None, requested_by=requested_by.strip(),
            reason=reason.strip(), approval_timeout_seconds=approval_timeout_seconds, gate=None), cfg, work, spec)
