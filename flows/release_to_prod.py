"""``release-to-prod``: promote exactly the digest that passed Test to ``<app>-prod``, through a
pull request and a human approval, with automatic rollback.

resolve version -> digest ──► gate (verified in Test?) ──► PR + summary ──► approval (suspended)
──► [prod lock: merge -> helm upgrade -> verify | rollback] ──► release record

Started by the service's CI when a GitHub Release is published (version = the tag), from the
Prefect UI, or by ``stageflow release APP SERVICE VERSION``. See flows/promotion.py.
"""
from __future__ import annotations

from prefect import flow

from flows.common import run_workspace, settings as load_platform
from flows.promotion import Promotion, ReleaseOutcome, promote
from stageflow.requests import ReleaseRequest
from stageflow.spec import load_spec
from stageflow.steps import release_gate, resolve_image
from tasks.release import release_commit_task, release_gate_task
from tasks.steps import infra_repo, resolve_image_task


@flow(name="release-to-prod", log_prints=True, validate_parameters=True)
def release_to_prod(app: str, service: str, version: str, requested_by: str, reason: str = "",
                    approval_timeout_seconds: int | None = None, allow_failed: bool = False) -> ReleaseOutcome:
    """Release ``version`` of a service to the app's prod stage, after an approver approves.

    Args:
        app: the application, e.g. ``shop``.
        service: the service within the app, e.g. ``orders``.
        version: a release tag of the service repository (e.g. ``v1.4.0``: its commit's image is released),
            an image tag in the registry, or ``sha256:<digest>``.
        requested_by: who asks for the release (a person, or the GitHub actor); they may not approve it alone.
        reason: why, shown to the approvers.
        approval_timeout_seconds: how long approvers have; empty: the platform's ``approval_timeout_hours``.
        allow_failed: a person decided to release a digest that already failed in prod.
    """
    request = ReleaseRequest(app, service, version, requested_by, approval_timeout_seconds).validate()
    cfg = load_platform()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
        svc = spec.service(app, service)
        spec.app(app)
        # A release tag of the service repository means the image CI built from its commit (the one
        # Test verified); any other version is an image tag or a digest in the registry.
        commit = None if request.digest else release_commit_task(cfg, svc.repository, version)
        tag = None if request.digest else version
        digest = resolve_image_task(resolve_image.Config(
            image=svc.image, tag=commit or tag, digest=request.digest,
            wait_seconds=cfg.timeouts.image_wait_seconds)).digest
        gate = release_gate_task(release_gate.Config(app=app, service=service, digest=digest,
                                                     allow_failed=allow_failed), cfg, work / "infra")
        return promote(Promotion(
            kind="release", app=app, service=service, version=version, image=svc.image, digest=digest, tag=tag,
            source_commit=gate.source_commit, requested_by=requested_by.strip(), reason=reason.strip(),
            approval_timeout_seconds=approval_timeout_seconds, gate=gate), cfg, work, spec)
