"""``update-service-template``: propose the newest service template to every service (or one).

publish the project's templates (adopts existing tags)  ──►  per service: copier update in a
scratch clone ──► PR from ``template/update-<version>``  ──►  summary artifact

A service already at the newest version is left alone; a re-run adopts the open PR. Conflicts
(the service and the template changed the same lines) are listed in the PR and in the artifact.
"""
from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.common import run_workspace, settings as load_platform
from stageflow.onboarding import update_template
from stageflow.onboarding.request import TEMPLATES, validate_update_target
from stageflow.spec import load_spec
from tasks.onboarding import publish_template_task, update_template_task
from tasks.steps import infra_repo


@flow(name="update-service-template", log_prints=True, validate_parameters=True)
def update_service_template(app: str | None = None, service: str | None = None) -> list[update_template.Result]:
    """Open a pull request with the newest template in each service repository rendered from one.

    Args:
        app: only the services of this app (default: every app).
        service: only this service (needs ``app``).
    """
    validate_update_target(app, service)
    cfg = load_platform()
    log = get_run_logger()
    for template in sorted(TEMPLATES):
        publish_template_task(template, cfg)
    with run_workspace(cfg) as work:
        spec = load_spec(infra_repo(cfg, work / "infra").sync())
    services = spec.services_of(app) if app else sorted(spec.services.values(), key=lambda s: (s.app, s.name))
    if service:
        services = [spec.service(app, service)]
    results = [update_template_task(update_template.Config(repository=svc.repository), cfg) for svc in services]
    conflicted = [r for r in results if r.conflicts]
    if conflicted:
        log.warning("template update conflicts in %s", ", ".join(r.repository for r in conflicted))
    _publish(results)
    return results


def _publish(results: list[update_template.Result]) -> None:
    rows = "\n".join(
        f"| `{r.repository}` | {r.state} | {r.from_version or ''} → {r.to_version or ''} | "
        f"{f'[#{r.pr_number}]({r.pr_url})' if r.pr_number else ''} | {', '.join(f'`{c}`' for c in r.conflicts)} |"
        for r in results)
    markdown = f"""# Service template updates

| repository | state | versions | pull request | conflicts |
|---|---|---|---|---|
{rows}

Conflicting files hold both sides between `<<<<<<< before updating` and `>>>>>>> after updating`;
resolve them on the PR's branch before merging.
"""
    create_markdown_artifact(markdown=markdown, key="service-template-updates",
                             description="copier update proposed to each service repository")
