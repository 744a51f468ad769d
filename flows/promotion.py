"""What release-to-prod and rollback share: prepare the pull request, ask for approval, then under
the app's prod lock merge, roll out, verify, and roll back automatically if the rollout fails.

    open/adopt PR + summary ──► suspend for approval ──► [prod lock: merge ──► helm upgrade ──►
    wait + verify ──(fails)──► helm rollback + infra revert]  ──► release record (artifact + infra)
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict

from flows.approval import await_decision, deadline
from flows.common import run_id, stage_lock
from stageflow.errors import StageflowError, TerminalError
from stageflow.release.summary import ReleaseSummary, record_markdown, summary_markdown
from stageflow.settings import PlatformSettings
from stageflow.spec import ImageRef, PlatformSpec, ReleaseRecord, SourceRef, load_spec, namespace
from stageflow.steps import helm_deploy, merge_release, open_release_pr, record_release, release_gate, \
    rollback_release, verify_rollout
from tasks.release import (close_release_pr_task, merge_release_task, open_release_pr_task, record_release_task,
                           rollback_release_task, source_commits_task)
from tasks.steps import helm_deploy_task, helm_revision_task, infra_repo, verify_rollout_task

STAGE = "prod"


class Promotion(BaseModel):
    """One request to change what Prod runs for a service."""

    model_config = ConfigDict(frozen=True)
    kind: str  # release | rollback
    app: str
    service: str
    version: str
    image: str
    digest: str
    tag: str | None
    source_commit: str | None
    requested_by: str
    reason: str
    approval_timeout_seconds: int | None
    gate: release_gate.Result | None


class ReleaseOutcome(BaseModel):
    """What the flow returns (and what ``stageflow release --watch`` prints)."""

    model_config = ConfigDict(frozen=True)
    kind: str
    app: str
    service: str
    version: str
    digest: str
    result: str
    namespace: str
    pull_request: str | None
    infra_commit: str | None
    helm_revision: int | None
    approver: str | None
    reason: str | None
    verification: str


class ReleaseRejected(TerminalError):
    """An approver rejected the release."""


class ReleaseFailed(TerminalError):
    """The rollout failed and was rolled back."""


def promote(p: Promotion, cfg: PlatformSettings, work: Path, spec: PlatformSpec) -> ReleaseOutcome:
    log = get_run_logger()
    svc = spec.service(p.app, p.service)
    ns = namespace(p.app, STAGE)
    pr_config = open_release_pr.Config(
        infra_repo=cfg.infra_repo, app=p.app, service=p.service, image=p.image, digest=p.digest, version=p.version,
        tag=p.tag, source_commit=p.source_commit, flow_run_id=run_id(), requested_by=p.requested_by, kind=p.kind)
    prepared = open_release_pr_task(pr_config, cfg, work / "infra")
    if prepared.pull_request is None:
        return _converge_declared(p, cfg, work, spec)

    previous = prepared.previous
    commits = source_commits_task(cfg, svc.repository, previous.source.commit if previous and previous.source else None,
                                  p.source_commit, work / "source")
    timeout = p.approval_timeout_seconds or spec.platform.approval_timeout_hours * 3600
    until = deadline(timeout)
    approvers = spec.app(p.app).approvers
    summary = ReleaseSummary(
        kind=p.kind, app=p.app, service=p.service, version=p.version, image=p.image, digest=p.digest,
        requested_by=p.requested_by, request_reason=p.reason, previous=previous, source_commit=p.source_commit,
        source_commits=commits, test_commit=p.gate.test_commit if p.gate else None,
        test_commit_date=p.gate.test_commit_date if p.gate else None, verified_by=p.gate.verified_by if p.gate else None,
        pull_request=f"#{prepared.pull_request.number} {prepared.pull_request.web_url}", diff=prepared.diff,
        approvers=approvers, deadline=until.isoformat(timespec="seconds"))
    description = summary_markdown(summary)
    create_markdown_artifact(markdown=description, key=f"{p.kind}-request-{p.app}-{p.service}",
                             description=f"{p.kind} request {p.app}/{p.service} {p.version}, awaiting approval")
    log.info("waiting for an approver of %s (%s) until %s: approve in the Prefect UI or with "
             "`stageflow approve %s --reason ...`", p.app, ", ".join(approvers) or "none listed", until.isoformat(),
             run_id())
    decision = await_decision(description, app=p.app, approvers=approvers, requested_by=p.requested_by, until=until)
    pr_ref = f"#{prepared.pull_request.number} {prepared.pull_request.web_url}"

    def record(result: str, verification: str, **fields) -> ReleaseOutcome:
        rec = ReleaseRecord(
            id=run_id(), kind=p.kind, version=p.version,
            image=ImageRef(repository=p.image, digest=p.digest, tag=p.tag),
            source=SourceRef(commit=p.source_commit) if p.source_commit else None, requested_by=p.requested_by,
            approver=decision.approver, reason=decision.reason, pull_request=pr_ref, result=result,
            verification=verification, recorded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields)
        return _publish(p, cfg, work, rec)

    if decision.decision == "reject":
        close_release_pr_task(cfg, prepared.pull_request.number)
        record("rejected", f"not rolled out: rejected by {decision.approver}")
        raise ReleaseRejected(f"{p.kind} of {p.app}/{p.service} {p.version} rejected by {decision.approver}: "
                              f"{decision.reason}")

    with stage_lock(p.app, STAGE):
        merged = merge_release_task(merge_release.Config(
            request=pr_config, number=prepared.pull_request.number, path=prepared.path,
            previous_text=prepared.previous_text, proposed_text=prepared.proposed_text,
            approver=decision.approver, reason=decision.reason), cfg)
        pr_ref = f"#{merged.pull_request.number} {merged.pull_request.web_url}"
        version = load_spec(infra_repo(cfg, work / "infra").sync()).version(p.app, p.service, STAGE)
        before = helm_revision_task(cfg, ns, p.service)
        try:
            deployed = helm_deploy_task(helm_deploy.Config(
                service=svc, version=version, chart=cfg.chart, database=spec.database(p.app, p.service, STAGE)), cfg)
            verified = verify_rollout_task(verify_rollout.Config(
                namespace=ns, deployment=deployed.release, image=f"{p.image}@{p.digest}",
                timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
        except StageflowError as exc:
            log.error("rollout of %s to %s failed: %s; rolling back", p.version, ns, exc)
            rolled = rollback_release_task(rollback_release.Config(
                infra_repo=cfg.infra_repo, namespace=ns, release=p.service, previous_revision=before,
                previous_image=previous.image.reference if previous else None, pull_request=merged.pull_request.number,
                timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
            record("failed", f"rollout failed: {exc}"[:2000], infra_commit=merged.merge_commit or None,
                   rolled_back_to=rolled.restored)
            raise ReleaseFailed(f"{p.kind} of {p.app}/{p.service} {p.version} failed in {ns} and was rolled back "
                                f"(prod runs {rolled.restored}; infra revert {rolled.revert_commit[:12]}): {exc}") from exc
    return record("succeeded", f"{verified.ready}/{verified.desired} replicas Ready running {verified.image}",
                  infra_commit=merged.merge_commit or None, helm_revision=deployed.revision)


def _converge_declared(p: Promotion, cfg: PlatformSettings, work: Path, spec: PlatformSpec) -> ReleaseOutcome:
    """Prod already declares this digest (an earlier run merged it): make the cluster match, no new approval."""
    log = get_run_logger()
    ns = namespace(p.app, STAGE)
    history = spec.release_history(p.app, p.service)
    done = next((r for r in reversed(history.releases) if r.image.digest == p.digest), None)
    log.info("prod already declares %s for %s/%s; making sure %s runs it", p.digest[:19], p.app, p.service, ns)
    with stage_lock(p.app, STAGE):
        version = load_spec(infra_repo(cfg, work / "infra").sync()).version(p.app, p.service, STAGE)
        deployed = helm_deploy_task(helm_deploy.Config(service=spec.service(p.app, p.service), version=version,
                                                       chart=cfg.chart,
                                                       database=spec.database(p.app, p.service, STAGE)), cfg)
        verified = verify_rollout_task(verify_rollout.Config(
            namespace=ns, deployment=deployed.release, image=f"{p.image}@{p.digest}",
            timeout_seconds=cfg.timeouts.rollout_seconds), cfg)
    verification = f"{verified.ready}/{verified.desired} replicas Ready running {verified.image}"
    if done is not None and done.result == "succeeded":
        return _outcome(done, p.app, p.service)
    rec = ReleaseRecord(
        id=run_id(), kind=p.kind, version=p.version, image=ImageRef(repository=p.image, digest=p.digest, tag=p.tag),
        source=SourceRef(commit=p.source_commit) if p.source_commit else None, requested_by=p.requested_by,
        result="succeeded", helm_revision=deployed.revision,
        verification=f"{verification} (already declared in the infra repo; no new approval needed)",
        recorded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return _publish(p, cfg, work, rec)


def _publish(p: Promotion, cfg: PlatformSettings, work: Path, rec: ReleaseRecord) -> ReleaseOutcome:
    """The release record in the infra repo's history and as the run's artifacts."""
    record_release_task(record_release.Config(app=p.app, service=p.service, record=rec), cfg, work / "infra")
    key = f"{p.app}-{p.service}"
    create_markdown_artifact(markdown=record_markdown(rec, p.app, p.service), key=f"release-record-prod-{key}",
                             description=f"{rec.kind} record: {p.app}/{p.service} {rec.version} {rec.result}")
    create_table_artifact(table=[rec.model_dump(mode="json", exclude_none=True) | {
        "image": rec.image.reference, "source": rec.source.commit if rec.source else None}],
        key=f"release-record-table-prod-{key}", description="source commit → digest → infra commit → Helm revision "
                                                           "→ approver → verification")
    return _outcome(rec, p.app, p.service)


def _outcome(rec: ReleaseRecord, app: str, service: str) -> ReleaseOutcome:
    return ReleaseOutcome(kind=rec.kind, app=app, service=service, version=rec.version, digest=rec.image.digest,
                          result=rec.result, namespace=namespace(app, STAGE), pull_request=rec.pull_request,
                          infra_commit=rec.infra_commit, helm_revision=rec.helm_revision, approver=rec.approver,
                          reason=rec.reason, verification=rec.verification)
