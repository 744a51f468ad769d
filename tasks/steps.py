"""Prefect tasks over the core steps. Each builds its adapters from the platform settings,
runs the step and returns its typed result; retries only on RetryableError."""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.gitops import InfraRepo
from stageflow.settings import PlatformSettings
from stageflow.steps import helm_deploy, resolve_image, verify_rollout, write_version
from tasks.retry import RETRY_POLICY


def infra_repo(settings: PlatformSettings, workdir: Path) -> InfraRepo:
    from tasks.forge import forge_for, git_auth_header

    forge = forge_for(settings)
    repo = forge.get_repo(settings.infra_repo)
    if repo is None:
        from stageflow.errors import NotFound

        raise NotFound(f"infrastructure repository {settings.infra_repo!r} does not exist on the forge")
    return InfraRepo(repo.clone_url, workdir, auth_header=git_auth_header(settings))


@task(name=resolve_image.KIND, **RETRY_POLICY)
def resolve_image_task(config: resolve_image.Config) -> resolve_image.Result:
    """Resolve ``image:tag`` to a digest, waiting a bounded time for a push still landing."""
    result = resolve_image.run(config)
    get_run_logger().info("resolved %s:%s to %s", config.image, config.tag, result.digest)
    return result


@task(name=write_version.KIND, **RETRY_POLICY)
def write_version_task(config: write_version.Config, settings: PlatformSettings, workdir: Path) -> write_version.Result:
    """Write the stage's desired version into the infrastructure repo (no commit if unchanged),
    after checking the chart renders with it."""
    check = helm_deploy.render_check(Helm(settings.kubeconfig), settings.chart)
    result = write_version.run(config, infra_repo(settings, workdir), check)
    log = get_run_logger()
    if result.commit:
        log.info("infra commit %s: %s", result.commit[:12], result.path)
    else:
        log.info("infra repo already has %s at %s; no commit", result.path, config.digest[:19])
    return result


@task(name=helm_deploy.KIND, **RETRY_POLICY)
def helm_deploy_task(config: helm_deploy.Config, settings: PlatformSettings) -> helm_deploy.Result:
    """``helm upgrade --install`` when the release differs from the wanted version."""
    result = helm_deploy.run(config, Helm(settings.kubeconfig), Kube(settings.kubeconfig))
    log = get_run_logger()
    if result.changed:
        log.info("helm release %s/%s at revision %d", result.namespace, result.release, result.revision)
    else:
        log.info("helm release %s/%s already matches (revision %d)", result.namespace, result.release, result.revision)
    return result


@task(name=verify_rollout.KIND, **RETRY_POLICY)
def verify_rollout_task(config: verify_rollout.Config, settings: PlatformSettings) -> verify_rollout.Result:
    """Wait for the rollout (observed generation, updated and available replicas), then verify it."""
    log = get_run_logger()
    seen: list[str] = []

    def progress(status) -> None:  # log each change of state once, not every poll
        line = f"{status.ready}/{status.desired} ready, {status.updated} updated"
        if not seen or seen[-1] != line:
            seen.append(line)
            log.info("rollout %s/%s: %s", config.namespace, config.deployment, line)

    return verify_rollout.run(config, Kube(settings.kubeconfig), on_progress=progress)


@task(name="helm:revision", **RETRY_POLICY)
def helm_revision_task(settings: PlatformSettings, namespace: str, release: str) -> int | None:
    """The release's current revision (None when not installed): what a rollback returns to."""
    current = Helm(settings.kubeconfig).status(release, namespace)
    return current.revision if current is not None else None
