"""The prod half of provision-database / deprovision-database: Terraform behind an approval.

The root module (``terraform/<app>/<service>/main.tf``) is committed to the infrastructure repo,
so what a plan does is reviewable there. Its working copy and the saved plan live under
``$STAGEFLOW_HOME`` (the plan as ``plans/<flow run>.tfplan``, mode 0600), because the run suspends
for approval and starts again from the top when it is resumed: the second pass finds the saved
plan and applies exactly that plan, never a new one.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.approval import await_decision, deadline
from flows.common import run_id, stage_lock
from stageflow.errors import Problem, TerminalError, ValidationFailed
from stageflow.settings import PlatformSettings
from stageflow.spec import Database, PlatformSpec, load_spec, namespace
from stageflow.steps import apply_database, helm_deploy, plan_database, record_database, render_db_root, \
    sync_db_secret, verify_rollout
from tasks.database import (apply_database_task, commit_db_root_task, delete_prod_secret_task, plan_database_task,
                            record_database_task, sync_db_secret_task)
from tasks.steps import helm_deploy_task, infra_repo, verify_rollout_task

STAGE = "prod"


class PlanRejected(TerminalError):
    """An approver rejected the plan."""


def instance_name(app: str, service: str) -> str:
    """The cloud instance name: ``<app>-<service>-prod``, shortened with a hash past 63 characters."""
    name = f"{app}-{service}-prod"
    if len(name) <= 63:
        return name
    return f"{name[:54].rstrip('-')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def provision_prod(*, app: str, service: str, engine: str, requested_by: str, reason: str,
                   approval_timeout_seconds: int | None, cfg: PlatformSettings, work: Path,
                   spec: PlatformSpec) -> Database:
    log = get_run_logger()
    missing = _missing_inputs(cfg, engine)
    if missing:
        raise ValidationFailed([Problem(f"databases.module_inputs.{engine}.{name}", "is required by the "
                                        f"{render_db_root.MODULES[engine]} module: set it in the platform settings "
                                        "(platform.json or the stageflow-platform block)") for name in missing],
                               summary="provision-database: the platform is not set up for prod databases")
    root = _root(cfg, app, service, engine, work, inputs={})
    plan_file = cfg.home / "plans" / f"{run_id()}.tfplan"
    planned = plan_database_task(plan_database.Config(
        plan_file=plan_file, backend_config=_backend(cfg, app, service),
        title=f"terraform/{app}/{service}: prod {engine} database"), cfg, root)
    if planned.summary.has_changes:
        decision = _approve(spec, app, service, requested_by, reason, approval_timeout_seconds, planned.markdown,
                            what="prod database plan")
        if decision.decision == "reject":
            plan_file.unlink(missing_ok=True)
            raise PlanRejected(f"the prod database plan of {app}/{service} was rejected by {decision.approver}: "
                               f"{decision.reason}")
        log.info("applying exactly the approved plan %s", plan_file.name)
    applied = apply_database_task(apply_database.Config(plan_file=plan_file), cfg, root,
                                  skip=not planned.summary.has_changes)
    plan_file.unlink(missing_ok=True)
    out = applied.outputs
    db = Database(app=app, service=service, stage=STAGE, engine=engine, provider="terraform", instance=out.instance,
                  host=out.endpoint, port=out.port, credentials=f"aws-secretsmanager:{out.credentials_secret}")
    synced = sync_db_secret_task(sync_db_secret.Config(
        app=app, service=service, credentials_secret=out.credentials_secret,
        connection={"host": out.endpoint, "port": str(out.port), "database": service.replace("-", "_")}), cfg)
    record_database_task(record_database.Config(database=db, flow_run_id=run_id()), cfg, work / "infra")
    wired = _wire(cfg, work, db)
    create_markdown_artifact(key=f"database-prod-{app}-{service}", description=f"{app}/{service} prod database",
                             markdown=f"""# {app}/{service}: prod database

| | |
|---|---|
| engine | {engine} (Terraform module {render_db_root.MODULES[engine]}) |
| instance | `{db.instance}` |
| endpoint | `{db.host}:{db.port}` |
| credentials | `{db.credentials}`, synced into Secret `{synced.namespace}/{synced.name}` (keys: {', '.join(synced.key_names)}) |
| plan | {planned.summary.add and 'applied' or 'no changes'}: {len(planned.summary.add)} to add, {len(planned.summary.change)} to change, {len(planned.summary.destroy)} to destroy |
| service wired | {wired} |
""")
    return db


def deprovision_prod(*, app: str, service: str, requested_by: str, reason: str, approval_timeout_seconds: int | None,
                     cfg: PlatformSettings, work: Path, spec: PlatformSpec) -> str:
    """Approval of the destroy plan, then: deletion protection off, destroy (the module takes a final
    snapshot), the synced Secret deleted, the database file removed."""
    db = spec.database(app, service, STAGE)
    if db is None:
        raise TerminalError(f"{app}/{service} has no prod database recorded in the infrastructure repo")
    root = _root(cfg, app, service, db.engine, work, inputs={})
    plan_file = cfg.home / "plans" / f"{run_id()}-destroy.tfplan"
    planned = plan_database_task(plan_database.Config(
        plan_file=plan_file, destroy=True, backend_config=_backend(cfg, app, service),
        title=f"terraform/{app}/{service}: DESTROY the prod {db.engine} database (a final snapshot is taken)"),
        cfg, root)
    decision = _approve(spec, app, service, requested_by, reason, approval_timeout_seconds, planned.markdown,
                        what="prod database deletion")
    plan_file.unlink(missing_ok=True)
    if decision.decision == "reject":
        raise PlanRejected(f"deleting the prod database of {app}/{service} was rejected by {decision.approver}: "
                           f"{decision.reason}")
    # Unwire the service first, then lift the deletion protection, then destroy.
    _wire(cfg, work, None, app=app, service=service)
    unprotected = _root(cfg, app, service, db.engine, work, inputs={"deletion_protection": False})
    for destroy in (False, True):
        step_plan = cfg.home / "plans" / f"{run_id()}-{'destroy' if destroy else 'unprotect'}-approved.tfplan"
        done = plan_database_task(plan_database.Config(plan_file=step_plan, destroy=destroy,
                                                       backend_config=_backend(cfg, app, service)), cfg, unprotected)
        apply_database_task(apply_database.Config(plan_file=step_plan, destroy=destroy), cfg, unprotected,
                            skip=not done.summary.has_changes)
        step_plan.unlink(missing_ok=True)
    delete_prod_secret_task(cfg, app, service)
    record_database_task(record_database.Config(database=db, flow_run_id=run_id(), remove=True), cfg, work / "infra")
    return f"{app}/{service}: prod database {db.instance} destroyed (final snapshot taken), approved by " \
           f"{decision.approver}"


def _approve(spec, app, service, requested_by, reason, timeout, plan_markdown: str, *, what: str):
    until = deadline(timeout or spec.platform.approval_timeout_hours * 3600)
    approvers = spec.app(app).approvers
    description = (f"## {what.capitalize()}: {app}/{service}\nRequested by **{requested_by}**."
                   + (f"\n\n> {reason}" if reason else "")
                   + f"\n\nApprovers: {', '.join(approvers) or '_none listed_'} (not {requested_by} alone). "
                     f"Decide before {until.isoformat(timespec='seconds')}.\n\n{plan_markdown}")
    create_markdown_artifact(markdown=description, key=f"database-request-{app}-{service}",
                             description=f"{what} {app}/{service}, awaiting approval")
    get_run_logger().info("waiting for an approver of the %s of %s/%s until %s: the Prefect UI or "
                          "`stageflow approve %s --reason ...`", what, app, service, until.isoformat(), run_id())
    return await_decision(description, app=app, approvers=approvers, requested_by=requested_by, until=until)


def _root(cfg: PlatformSettings, app: str, service: str, engine: str, work: Path, *, inputs: dict) -> Path:
    """Render the root, commit it to the infra repo (no commit when unchanged) and write the working
    copy Terraform runs in (kept between runs: .terraform and the provider lock live there)."""
    rendered = render_db_root.run(render_db_root.Config(
        app=app, service=service, engine=engine, instance=instance_name(app, service),
        modules_source=cfg.databases.terraform_modules, backend=cfg.databases.terraform_backend,
        inputs={**cfg.databases.module_inputs.get(engine, {}), **inputs}))
    commit_db_root_task(cfg, rendered.path, rendered.text, work / "infra")
    root = cfg.home / "terraform" / app / service
    root.mkdir(parents=True, exist_ok=True)
    main = root / "main.tf"
    if not main.exists() or main.read_text() != rendered.text:
        main.write_text(rendered.text)
    return root


_PLATFORM_INPUTS = {"postgres": ("db_subnet_group_name", "vpc_security_group_ids"), "mongodb": ("project_id",)}


def _missing_inputs(cfg: PlatformSettings, engine: str) -> list[str]:
    """Module inputs only the platform knows (its network, its Atlas project) and that are not set."""
    given = cfg.databases.module_inputs.get(engine, {})
    return [name for name in _PLATFORM_INPUTS[engine] if name not in given]


def _backend(cfg: PlatformSettings, app: str, service: str) -> dict[str, str]:
    if cfg.databases.terraform_backend == "s3":
        if not cfg.databases.state_bucket:
            raise ValidationFailed(Problem("databases.state_bucket", "is required with the s3 state backend: set "
                                                                     "it in the platform settings (or use the "
                                                                     "local backend)"),
                                   summary="the platform is not set up for Terraform state")
        return {"bucket": cfg.databases.state_bucket or "", "key": f"stageflow/{app}/{service}/prod.tfstate",
                "region": cfg.databases.aws_region}
    state = cfg.home / "terraform-state" / app / f"{service}.tfstate"
    state.parent.mkdir(parents=True, exist_ok=True)
    return {"path": str(state)}


def _wire(cfg: PlatformSettings, work: Path, db: Database | None, *, app: str | None = None,
          service: str | None = None) -> str:
    """Redeploy the service's prod version with (or, db=None, without) the database Secret."""
    app, service = (db.app, db.service) if db else (app, service)
    spec = load_spec(infra_repo(cfg, work / "infra").sync())
    version = spec.version(app, service, STAGE)
    if version is None:
        return "not released yet: its first release gets the Secret as its environment"
    with stage_lock(app, STAGE):
        deployed = helm_deploy_task(helm_deploy.Config(service=spec.service(app, service), version=version,
                                                       chart=cfg.chart, database=db), cfg)
        verify_rollout_task(verify_rollout.Config(
            namespace=namespace(app, STAGE), deployment=deployed.release, image=version.image.reference,
            timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
    return f"Helm revision {deployed.revision}" + ("" if deployed.changed else " (already wired)")
