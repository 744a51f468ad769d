"""Prefect tasks over the release steps: build the adapters from the settings, run the step,
log what happened, return the typed result. Retries only on RetryableError."""
from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.gitops import InfraRepo
from stageflow.settings import PlatformSettings
from stageflow.steps import merge_release, open_release_pr, record_release, release_gate, rollback_release
from tasks.forge import forge_for, git_auth_header
from tasks.retry import RETRY_POLICY
from tasks.steps import infra_repo


def test_record_key(app: str, service: str) -> str:
    """The artifact key under which build-to-test records each verified Test rollout."""
    return f"release-record-test-{app}-{service}"


def test_verifications(app: str, service: str) -> list[release_gate.TestVerification]:
    """Every Test release record build-to-test wrote for the service (all artifact versions)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[test_record_key(app, service)])))
    found = []
    for artifact in artifacts:
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        for row in rows or []:
            if isinstance(row, dict) and row.get("digest"):
                found.append(release_gate.TestVerification(
                    digest=row["digest"], flow_run=str(row.get("flow_run", "")), verified=row.get("verified") is True,
                    recorded=artifact.created.isoformat() if artifact.created else None))
    return found


@task(name=release_gate.KIND, **RETRY_POLICY)
def release_gate_task(config: release_gate.Config, settings: PlatformSettings, workdir: Path) -> release_gate.Result:
    """Refuse a digest that did not pass Test (or already failed in Prod)."""
    result = release_gate.run(config, infra_repo(settings, workdir), test_verifications(config.app, config.service))
    get_run_logger().info("gate passed: %s was set in test by infra commit %s and verified by flow run %s",
                          config.digest[:19], result.test_commit[:12], result.verified_by)
    return result


@task(name=open_release_pr.KIND, **RETRY_POLICY)
def open_release_pr_task(config: open_release_pr.Config, settings: PlatformSettings,
                         workdir: Path) -> open_release_pr.Result:
    """Open (or adopt) the pull request that sets the Prod version."""
    result = open_release_pr.run(config, forge_for(settings), infra_repo(settings, workdir))
    log = get_run_logger()
    if result.pull_request is None:
        log.info("prod already declares %s: no pull request needed", config.digest[:19])
    else:
        log.info("%s pull request #%d: %s", "opened" if result.created else "adopted", result.pull_request.number,
                 result.pull_request.web_url)
    return result


@task(name="git:source-commits", **RETRY_POLICY)
def source_commits_task(settings: PlatformSettings, repository: str, old: str | None, new: str | None,
                        workdir: Path) -> list[str] | None:
    """The service's commits between what Prod runs and what is released (None when unknown)."""
    if not old or not new:
        return None
    if old == new:
        return []
    forge = forge_for(settings)
    repo = forge.get_repo(repository)
    if repo is None:
        get_run_logger().warning("service repository %r not found on the forge; commits not listed", repository)
        return None
    source = InfraRepo(repo.clone_url, workdir, branch=repo.default_branch, auth_header=git_auth_header(settings))
    source.sync()
    return source.commits_between(old, new)


@task(name=merge_release.KIND, **RETRY_POLICY)
def merge_release_task(config: merge_release.Config, settings: PlatformSettings) -> merge_release.Result:
    """Merge the approved pull request (re-opened on top of main if Prod changed meanwhile)."""
    result = merge_release.run(config, forge_for(settings))
    get_run_logger().info("merged pull request #%d as %s%s", result.pull_request.number, result.merge_commit[:12],
                          " (re-opened on the current main first)" if result.reopened else "")
    return result


@task(name=rollback_release.KIND, **RETRY_POLICY)
def rollback_release_task(config: rollback_release.Config, settings: PlatformSettings) -> rollback_release.Result:
    """Helm back to the previous revision and revert the release in the infra repo."""
    result = rollback_release.run(config, forge_for(settings), Helm(settings.kubeconfig), Kube(settings.kubeconfig))
    get_run_logger().warning("rolled back: prod runs %s; infra revert %s (pull request #%d)", result.restored,
                             result.revert_commit[:12], result.revert_pull_request)
    return result


@task(name=record_release.KIND, **RETRY_POLICY)
def record_release_task(config: record_release.Config, settings: PlatformSettings,
                        workdir: Path) -> record_release.Result:
    """Append the release record to the infra repo's history (no commit if already there)."""
    result = record_release.run(config, infra_repo(settings, workdir))
    get_run_logger().info("release record %s in %s", result.commit[:12] if result.commit else "already", result.path)
    return result


@task(name="gitops:close-release-pr", **RETRY_POLICY)
def close_release_pr_task(settings: PlatformSettings, number: int) -> None:
    forge_for(settings).close_pull_request(settings.infra_repo, number)
    get_run_logger().info("closed pull request #%d", number)


@task(name="forge:release-commit", **RETRY_POLICY)
def release_commit_task(settings: PlatformSettings, repository: str, version: str) -> str | None:
    """The commit a release tag of the service repository points at (None: no such release)."""
    from stageflow.errors import NotFound

    try:
        release = forge_for(settings).get_release(repository, version)
    except NotFound:
        return None
    if release is not None:
        get_run_logger().info("release %s of %s is commit %s", version, repository, release.commit[:12])
    return release.commit if release is not None else None
