"""Prefect tasks over the onboarding steps: build the adapters from the platform settings, run the
step, log what changed (names only, never a secret value); retries only on RetryableError."""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from stageflow.adapters.kube import Kube
from stageflow.onboarding import configure_repo, ensure_namespaces, register_in_infra, render_repo, update_template
from stageflow.onboarding.template_repo import PublishedTemplate, publish_template
from stageflow.settings import PlatformSettings
from tasks.forge import forge_for
from tasks.retry import RETRY_POLICY

# Every task runs every time: a cached result could skip a step whose effect was undone since.
# Results are not persisted either: they only travel to the next step inside this flow run.
_NO_CACHE = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="onboarding:publish-template", **RETRY_POLICY, **_NO_CACHE)
def publish_template_task(template: str, settings: PlatformSettings) -> PublishedTemplate:
    """Publish ``templates/service-<template>`` to the forge at its version tag (adopted if tagged)."""
    published = publish_template(forge_for(settings), template)
    get_run_logger().info("template %s %s %s at %s", template, published.version,
                          "published" if published.created else "already published", published.commit[:12])
    return published


@task(name=render_repo.KIND, **RETRY_POLICY, **_NO_CACHE)
def render_repo_task(config: render_repo.Config, settings: PlatformSettings) -> render_repo.Result:
    """Render the template into the new repository's first commit (adopts a rendered repository)."""
    result = render_repo.run(config, forge_for(settings))
    log = get_run_logger()
    if result.files:
        log.info("repository %s: %d files from template %s, commit %s", result.repository, result.files,
                 config.template_version, result.commit[:12])
    else:
        log.info("repository %s already rendered (main at %s)", result.repository, result.commit[:12])
    return result


@task(name=configure_repo.KIND, **RETRY_POLICY, **_NO_CACHE)
def configure_repo_task(config: configure_repo.Config, settings: PlatformSettings) -> configure_repo.Result:
    """Branch protection, Actions variables and secrets of the service repository."""
    result = configure_repo.run(config, forge_for(settings))
    get_run_logger().info("repository %s: %s", config.repository,
                          ", ".join(result.changed) + " set" if result.changed else "settings already as wanted")
    return result


@task(name=register_in_infra.KIND, **RETRY_POLICY, **_NO_CACHE)
def register_in_infra_task(config: register_in_infra.Config, settings: PlatformSettings) -> register_in_infra.Result:
    """The Service (and a new App) on the infra repo through a pull request, merged if policy allows."""
    result = register_in_infra.run(config, forge_for(settings))
    get_run_logger().info("infra registration %s: PR #%s %s%s", config.branch, result.pr_number, result.state,
                          " (opened now)" if result.pr_created else "")
    return result


@task(name=ensure_namespaces.KIND, **RETRY_POLICY, **_NO_CACHE)
def ensure_namespaces_task(config: ensure_namespaces.Config, settings: PlatformSettings) -> ensure_namespaces.Result:
    """``<app>-test`` and ``<app>-prod`` exist, labelled."""
    with Kube(settings.kubeconfig) as kube:
        result = ensure_namespaces.run(config, kube)
    get_run_logger().info("namespaces %s (created now: %s)", ", ".join(result.namespaces),
                          ", ".join(result.created) or "none")
    return result


@task(name=update_template.KIND, **RETRY_POLICY, **_NO_CACHE)
def update_template_task(config: update_template.Config, settings: PlatformSettings) -> update_template.Result:
    """``copier update`` of one service repository to the newest template tag, proposed as a PR."""
    result = update_template.run(config, forge_for(settings))
    log = get_run_logger()
    if result.state == "proposed":
        log.info("%s: PR #%s %s -> %s%s", config.repository, result.pr_number, result.from_version,
                 result.to_version, f"; CONFLICTS in {', '.join(result.conflicts)}" if result.conflicts else "")
    else:
        log.info("%s: %s", config.repository, result.state)
    return result
