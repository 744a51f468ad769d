"""``sync-stage``: make every service of one app stage match the infrastructure repo (GitOps apply).

Run after a change to the infrastructure repo is merged. Services whose Helm release already
matches are left alone (no new revision); the others are upgraded in parallel and verified.
"""
from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict

from flows.common import Timings, run_workspace, settings as load_platform, stage_lock
from stageflow.requests import SyncStageRequest
from stageflow.spec import load_spec, namespace
from stageflow.steps import helm_deploy, verify_rollout
from tasks.steps import helm_deploy_task, infra_repo, verify_rollout_task


class ServiceSync(BaseModel):
    model_config = ConfigDict(frozen=True)
    service: str
    digest: str
    helm_revision: int
    changed: bool
    ready: int
    desired: int


class StageSync(BaseModel):
    model_config = ConfigDict(frozen=True)
    app: str
    stage: str
    infra_commit: str
    services: list[ServiceSync]

    @property
    def changed(self) -> list[str]:
        return [s.service for s in self.services if s.changed]


@flow(name="sync-stage", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=8))
def sync_stage(app: str, stage: Literal["test", "prod"] = "test") -> StageSync:
    """Apply the infrastructure repo's versions for ``app`` in ``stage`` to the cluster.

    Args:
        app: the application, e.g. ``shop``.
        stage: ``test`` or ``prod``.
    """
    SyncStageRequest(app, stage).validate()
    cfg = load_platform()
    log = get_run_logger()
    timings = Timings()
    with run_workspace(cfg) as work:
        infra = infra_repo(cfg, work / "infra")
        spec = load_spec(infra.sync())
        spec.app(app)
        head = infra.head()
        versions = [(svc, spec.version(app, svc.name, stage)) for svc in spec.services_of(app)]
        wanted = [(svc, v) for svc, v in versions if v is not None]
        log.info("%s: %d of %d services have a version for %s", app, len(wanted), len(versions), stage)
        with stage_lock(app, stage):
            with timings.step("helm upgrade"):
                deploys = [helm_deploy_task.submit(helm_deploy.Config(
                    service=svc, version=v, chart=cfg.chart, database=spec.database(app, svc.name, stage)), cfg)
                           for svc, v in wanted]
                wait(deploys)
            with timings.step("rollout + verify"):
                checks = [verify_rollout_task.submit(verify_rollout.Config(
                    namespace=namespace(app, stage), deployment=svc.name,
                    image=f"{v.image.repository}@{v.image.digest}", timeout_seconds=cfg.timeouts.rollout_seconds),
                    cfg, wait_for=[d]) for (svc, v), d in zip(wanted, deploys)]
                wait(checks)
            results = [
                ServiceSync(service=svc.name, digest=v.image.digest, helm_revision=d.result().revision,
                            changed=d.result().changed, ready=c.result().ready, desired=c.result().desired)
                for (svc, v), d, c in zip(wanted, deploys, checks)
            ]
    outcome = StageSync(app=app, stage=stage, infra_commit=head, services=results)
    rows = "\n".join(f"| {s.service} | `{s.digest[:19]}…` | {s.helm_revision}{' (new)' if s.changed else ''} | "
                     f"{s.ready}/{s.desired} |" for s in results)
    create_markdown_artifact(
        key=f"sync-{stage}-{app}", description=f"{namespace(app, stage)} synced to infra commit {head[:12]}",
        markdown=f"# {namespace(app, stage)} synced to `{head}`\n\n{len(outcome.changed)} of {len(results)} "
                 f"services changed.\n\n| service | digest | Helm revision | ready |\n|---|---|---|---|\n{rows}\n\n"
                 f"## Timings\n{timings.markdown()}\n")
    return outcome
