"""``deprovision-database``: remove a service's database at one stage.

test:  needs ``confirm = "<app>/<service>"`` (the data is deleted). The service's test deployment
       stops referencing the Secret first, then the Helm release, the Secret and the volumes go,
       then the database file leaves the infrastructure repo.
prod:  plan the destruction (the module takes a final snapshot) ──► approval, as for releases ──►
       apply exactly that plan ──► Secret removed from <app>-prod ──► database file removed.
Safe to re-run: what is already gone is skipped.
"""
from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger

from flows.common import run_id, run_workspace, settings as load_platform, stage_lock
from stageflow.errors import Problem, ValidationFailed
from stageflow.requests import DatabaseRequest
from stageflow.spec import load_spec, namespace
from stageflow.steps import deprovision_test_database, helm_deploy, record_database, verify_rollout
from tasks.database import deprovision_test_database_task, record_database_task
from tasks.steps import helm_deploy_task, infra_repo, verify_rollout_task


@flow(name="deprovision-database", log_prints=True, validate_parameters=True)
def deprovision_database(app: str, service: str, stage: Literal["test", "prod"] = "test", requested_by: str = "",
                         reason: str = "", confirm: str = "", approval_timeout_seconds: int | None = None) -> str:
    """Delete the service's database at ``stage`` (test: after confirmation; prod: after approval,
    with a final snapshot) and remove it from the infrastructure repo.

    Args:
        app: the application, e.g. ``shop``.
        service: the service within the app, e.g. ``orders``.
        stage: ``test`` or ``prod``.
        requested_by: who asks (required for prod; they may not approve alone).
        reason: why, shown to the approvers of a prod deletion.
        confirm: test only: type ``<app>/<service>`` to confirm that its data is deleted.
        approval_timeout_seconds: prod: how long approvers have; empty: the platform's default.
    """
    DatabaseRequest(app, service, stage, None, requested_by, approval_timeout_seconds,
                    flow="deprovision-database").validate()
    if stage == "test" and confirm.strip() != f"{app}/{service}":
        raise ValidationFailed(Problem("confirm", f"must be '{app}/{service}' to delete the test database and its "
                                                  f"data (got {confirm!r})"), summary="deprovision-database: not confirmed")
    cfg = load_platform()
    log = get_run_logger()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
        svc = spec.service(app, service)
        db = spec.database(app, service, stage)
        if stage == "prod":
            from flows.prod_database import deprovision_prod

            return deprovision_prod(app=app, service=service, requested_by=requested_by.strip(), reason=reason.strip(),
                                    approval_timeout_seconds=approval_timeout_seconds, cfg=cfg, work=work, spec=spec)
        version = spec.version(app, service, "test")
        if version is not None:
            # Unwire first: pods must never point at a Secret that is about to disappear.
            with stage_lock(app, "test"):
                deployed = helm_deploy_task(helm_deploy.Config(service=svc, version=version, chart=cfg.chart), cfg)
                verify_rollout_task(verify_rollout.Config(
                    namespace=deployed.namespace, deployment=deployed.release, image=version.image.reference,
                    timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
        removed = deprovision_test_database_task(deprovision_test_database.Config(app=app, service=service), cfg)
        if db is not None:
            record_database_task(record_database.Config(database=db, flow_run_id=run_id(), remove=True), cfg,
                                 work / "infra")
    message = (f"{app}/{service}: test database removed from {namespace(app, 'test')}"
               + ("" if removed.release_removed or removed.secret_deleted or removed.claims_deleted
                  else " (nothing was left)") + ("" if db else "; none was recorded"))
    log.info(message)
    return message
