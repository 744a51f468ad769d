"""``build-to-test``: roll a commit a service's CI just pushed out to ``<app>-test``.

resolve tag -> digest  ──►  [stage lock: write desired version -> helm upgrade -> wait + verify]
                            ──►  summary artifact + release record

Called by the service's CI after it pushed ``image:<sha>`` (idempotency key: the commit); safe to
re-run: the same commit makes no new infra commit and no new Helm revision.
"""
from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict

from flows.common import Timings, run_id, run_workspace, settings as load_platform, stage_lock
from stageflow.requests import BuildToTestRequest
from stageflow.spec import load_spec, namespace, split_image_reference
from stageflow.steps import helm_deploy, resolve_image, verify_rollout, write_version
from tasks.steps import helm_deploy_task, infra_repo, resolve_image_task, verify_rollout_task, write_version_task

STAGE = "test"


class RolloutSummary(BaseModel):
    """What a rollout did; returned by the flow and rendered into its artifact."""

    model_config = ConfigDict(frozen=True)
    app: str
    service: str
    stage: str
    namespace: str
    image: str
    digest: str
    previous_digest: str | None
    source_commit: str | None
    infra_commit: str | None
    infra_head: str
    helm_revision: int
    helm_changed: bool
    ready: int
    desired: int
    timings: dict[str, float]


@flow(name="build-to-test", log_prints=True, validate_parameters=True)
def build_to_test(app: str, service: str, commit: str, image: str | None = None) -> RolloutSummary:
    """Deploy the image CI built from ``commit`` to the app's test stage.

    Args:
        app: the application (DNS-1123 label), e.g. ``shop``.
        service: the service within the app, e.g. ``orders``.
        commit: the source commit sha; the image tag CI pushed.
        image: optional explicit image reference (``repo:tag`` or ``repo@sha256:...``); defaults to
            the service's image repository from the infrastructure repo, tagged with ``commit``.
    """
    request = BuildToTestRequest(app, service, commit, image).validate()
    cfg = load_platform()
    timings = Timings()
    log = get_run_logger()
    with run_workspace(cfg) as work:
        infra = infra_repo(cfg, work / "infra")
        with timings.step("read spec"):
            spec = load_spec(infra.sync())
            svc = spec.service(app, service)
        repository, tag, digest = _image_of(request, svc.image)
        with timings.step("resolve image"):
            digest = resolve_image_task(resolve_image.Config(
                image=repository, tag=tag, digest=digest, wait_seconds=cfg.timeouts.image_wait_seconds)).digest
        with stage_lock(app, STAGE):
            with timings.step("write infra repo"):
                written = write_version_task(write_version.Config(
                    app=app, service=service, stage=STAGE, image=repository, digest=digest, tag=tag,
                    source_commit=commit, flow_run_id=run_id()), cfg, work / "infra")
            with timings.step("helm upgrade"):
                deployed = helm_deploy_task(helm_deploy.Config(
                    service=svc, version=written.version, chart=cfg.chart, database=spec.database(app, service, STAGE)),
                    cfg)
            with timings.step("rollout + verify"):
                verified = verify_rollout_task(verify_rollout.Config(
                    namespace=deployed.namespace, deployment=deployed.release,
                    image=f"{repository}@{digest}", timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
    summary = RolloutSummary(
        app=app, service=service, stage=STAGE, namespace=namespace(app, STAGE), image=repository, digest=digest,
        previous_digest=written.previous_digest, source_commit=commit, infra_commit=written.commit,
        infra_head=written.head, helm_revision=deployed.revision, helm_changed=deployed.changed,
        ready=verified.ready, desired=verified.desired, timings=dict(timings.steps))
    publish(summary, timings)
    log.info("%s/%s is Ready in %s at %s", app, service, summary.namespace, digest)
    return summary


def _image_of(request: BuildToTestRequest, default_repository: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) to deploy: the explicit reference, else the service's repository at the commit."""
    if request.image is None:
        return default_repository, request.commit, None
    repository, tag, digest = split_image_reference(request.image)
    if tag is None and digest is None:
        tag = request.commit
    return repository, tag, digest


def publish(summary: RolloutSummary, timings: Timings) -> None:
    """The run's markdown summary and the stage's release record, both as Prefect artifacts."""
    change = (f"`{summary.previous_digest}` → `{summary.digest}`" if summary.previous_digest != summary.digest
              else f"`{summary.digest}` (unchanged)")
    infra = f"`{summary.infra_commit}`" if summary.infra_commit else f"none needed (head `{summary.infra_head}`)"
    helm = f"revision {summary.helm_revision}" + ("" if summary.helm_changed else " (unchanged)")
    markdown = f"""# {summary.app}/{summary.service} → {summary.namespace}

| | |
|---|---|
| image | `{summary.image}` |
| digest | {change} |
| source commit | `{summary.source_commit}` |
| infra commit | {infra} |
| Helm release | `{summary.namespace}/{summary.service}` {helm} |
| replicas | {summary.ready}/{summary.desired} Ready |
| verified | yes: every replica runs `{summary.image}@{summary.digest}` |

## Timings
{timings.markdown()}
"""
    key = f"{summary.stage}-{summary.app}-{summary.service}"
    create_markdown_artifact(markdown=markdown, key=f"rollout-{key}",
                             description=f"{summary.app}/{summary.service} rolled out to {summary.namespace}")
    record = {
        "app": summary.app, "service": summary.service, "stage": summary.stage,
        "source_commit": summary.source_commit, "image": summary.image, "digest": summary.digest,
        "infra_commit": summary.infra_commit or summary.infra_head, "helm_revision": summary.helm_revision,
        "verified": True, "flow_run": run_id(),
    }
    create_table_artifact(table=[record], key=f"release-record-{key}",
                          description="release record: source commit → digest → infra commit → Helm revision")

