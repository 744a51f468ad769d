"""``provision-database``: give a service its own database at one stage.

test:  [Secret with generated credentials] ──► helm install <service>-db into <app>-test ──► Ready
       ──► record apps/<app>/databases/test/<service>.yaml ──► the service's test deployment gets
       the Secret as its environment (if it is deployed)
prod:  terraform root in the infra repo ──► init + plan -out ──► plan summary ──► approval
       (suspended, as for releases) ──► apply exactly the saved plan ──► outputs ──► credentials
       from the secret manager synced into <app>-prod ──► record apps/<app>/databases/prod/<service>.yaml

Safe to re-run: the Secret and the Helm release are adopted, a plan without changes needs no
approval, and recording what is already recorded makes no commit.
"""
from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.common import run_id, run_workspace, settings as load_platform, stage_lock
from stageflow.errors import Problem, ValidationFailed
from stageflow.requests import DatabaseRequest
from stageflow.spec import Database, load_spec, namespace
from stageflow.steps import helm_deploy, provision_test_database, record_database, verify_rollout
from tasks.database import provision_test_database_task, record_database_task
from tasks.steps import helm_deploy_task, infra_repo, verify_rollout_task


@flow(name="provision-database", log_prints=True, validate_parameters=True)
def provision_database(app: str, service: str, stage: Literal["test", "prod"] = "test",
                       engine: Literal["postgres", "mongodb"] | None = None, requested_by: str = "",
                       reason: str = "", approval_timeout_seconds: int | None = None) -> Database:
    """Provision the service's own database at ``stage`` and record it in the infrastructure repo.

    Args:
        app: the application, e.g. ``shop``.
        service: the service within the app, e.g. ``orders``.
        stage: ``test`` (in-cluster, Helm) or ``prod`` (managed, Terraform, after approval).
        engine: ``postgres`` or ``mongodb``; empty: what the service declares in the infra repo.
        requested_by: who asks (required for prod; they may not approve the plan alone).
        reason: why, shown to the approvers of a prod plan.
        approval_timeout_seconds: how long approvers of a prod plan have; empty: the platform's default.
    """
    DatabaseRequest(app, service, stage, engine, requested_by, approval_timeout_seconds).validate()
    cfg = load_platform()
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
        svc = spec.service(app, service)
        engine = _engine(svc.database, engine)
        if stage == "prod":
            from flows.prod_database import provision_prod

            return provision_prod(app=app, service=service, engine=engine, requested_by=requested_by.strip(),
                                  reason=reason.strip(), approval_timeout_seconds=approval_timeout_seconds,
                                  cfg=cfg, work=work, spec=spec)
        custom = spec.platform.test_databases.get(engine)  # another chart, chosen in platform.yaml
        result = provision_test_database_task(provision_test_database.Config(
            app=app, service=service, engine=engine, chart=cfg.databases.test_chart, custom=custom,
            plain_http=custom is not None and _loopback(custom.chart),
            timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
        db = Database(app=app, service=service, stage="test", engine=engine, provider="helm", instance=result.release,
                      host=result.host, port=result.port, credentials=f"kubernetes:{result.namespace}/{result.secret}")
        record_database_task(record_database.Config(database=db, flow_run_id=run_id()), cfg, work / "infra")
        wired = _wire_service(cfg, work, db)
    create_markdown_artifact(key=f"database-test-{app}-{service}", description=f"{app}/{service} test database",
                             markdown=_markdown(db, result.secret_created, wired))
    get_run_logger().info("%s/%s has its own %s database in %s (Secret %s)", app, service, engine,
                          namespace(app, "test"), result.secret)
    return db


def _loopback(chart: str) -> bool:
    """An oci:// chart on this machine's own registry (the embedded one speaks plain HTTP)."""
    host = chart.removeprefix("oci://").split("/", 1)[0].rsplit(":", 1)[0]
    return chart.startswith("oci://") and host in ("127.0.0.1", "localhost", "[::1]")


def _engine(declared: str, asked: str | None) -> str:
    if asked is None:
        if declared == "none":
            raise ValidationFailed(Problem("engine", "is required: the service declares no database "
                                                     "(postgres or mongodb)"), summary="provision-database: invalid input")
        return declared
    if declared not in ("none", asked):
        raise ValidationFailed(Problem("engine", f"is {asked!r} but the service declares database: {declared!r}; "
                                                 "one service has one database engine"),
                               summary="provision-database: invalid input")
    return asked


def _wire_service(cfg, work, db: Database) -> str:
    """Redeploy the service's current version at the stage with the database Secret as its
    environment (a no-op when it is already wired or not deployed yet: its next deploy wires it)."""
    spec = load_spec(infra_repo(cfg, work / "infra").sync())
    version = spec.version(db.app, db.service, db.stage)
    if version is None:
        return "not deployed yet: its first deploy gets the Secret as its environment"
    with stage_lock(db.app, db.stage):
        deployed = helm_deploy_task(helm_deploy.Config(service=spec.service(db.app, db.service), version=version,
                                                       chart=cfg.chart, database=db), cfg)
        verify_rollout_task(verify_rollout.Config(
            namespace=deployed.namespace, deployment=deployed.release, image=version.image.reference,
            timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
    return f"Helm revision {deployed.revision}" + ("" if deployed.changed else " (already wired)")


def _markdown(db: Database, created: bool, wired: str) -> str:
    return f"""# {db.app}/{db.service}: {db.stage} database

| | |
|---|---|
| engine | {db.engine} |
| instance | `{db.instance}` ({db.provider}) |
| endpoint | `{db.host}:{db.port}` |
| credentials | `{db.credentials}` ({'generated now' if created else 'kept'}; never shown here) |
| service wired | {wired} |
"""
