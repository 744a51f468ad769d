"""``onboard-service``: a new service, ready to ship, registered on the platform.

validate (input, then the platform's state)  ──►  publish template  ──►  render repo  ──►
configure repo  ──►  register in infra (PR, merged by policy)  ──►  namespaces, hardened
(ensure-app-stages)  ──►  test database (provision-database, when one was asked for)  ──►  summary artifact

Nothing is created before both checks pass. Every step adopts what an earlier attempt made, so a
re-run converges, and a finished onboarding run again reports "already onboarded" and changes
nothing. A failure that escapes the steps' retries undoes what *this* run created, through an
explicit compensation list (stageflow/onboarding/compensation.py): the repository it created is
deleted and its infra registration is closed or reverted through a PR. The template repository
(shared, versioned) and empty namespaces (adopted by the re-run) are kept.
"""
from __future__ import annotations

import os

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, SecretStr

from flows.common import Timings, run_workspace, settings as load_platform
from stageflow.adapters.forge.base import Forge
from stageflow.errors import TerminalError
from stageflow.onboarding import configure_repo, ensure_namespaces, register_in_infra, render_repo
from stageflow.onboarding.compensation import Compensations
from stageflow.onboarding.request import ANSWERS_FILE, OnboardRequest, check_onboarding_target, service_spec
from stageflow.settings import PlatformSettings
from stageflow.steps import ensure_app_stages
from stageflow.spec import App, load_spec, namespace
from tasks.forge import forge_for
from tasks.onboarding import (
    configure_repo_task, ensure_namespaces_task, publish_template_task, register_in_infra_task, render_repo_task,
)
from tasks.stages import ensure_app_stages_task
from tasks.steps import infra_repo

# Test-only: fail with a terminal error right after the step of this KIND (or "summary"), to show
# that the compensation and a re-run converge. Read here and nowhere else.
FAIL_AFTER_ENV = "STAGEFLOW_TEST_FAIL_AFTER"
# The Prefect API key the service's CI uses, when the platform has one (a Prefect Cloud or an
# authenticated server); taken from the environment, never a flow parameter, so it is never stored
# in the run's parameters.
CI_API_KEY_ENV = "STAGEFLOW_CI_PREFECT_API_KEY"
SUMMARY_STEP = "onboarding:summary"


class OnboardingSummary(BaseModel):
    """What onboarding did; returned by the flow and rendered into its artifact."""

    model_config = ConfigDict(frozen=True)
    app: str
    service: str
    already_onboarded: bool
    repository: str
    repository_url: str
    template_version: str
    app_created: bool
    infra_pr: int | None
    infra_pr_url: str | None
    infra_state: str
    namespaces: list[str]
    database: str
    changed: list[str]


class StepFailedForTest(TerminalError):
    """Raised after a step when STAGEFLOW_TEST_FAIL_AFTER names it."""


@flow(name="onboard-service", log_prints=True, validate_parameters=True)
def onboard_service(app: str, service: str, owners: list[str], template: str = "python", port: int = 8080,
                    database: str = "none", auto_merge: bool = True) -> OnboardingSummary:
    """Create a service repository from a template and register the service on the platform.

    Args:
        app: the application (DNS-1123 label); created when new, with ``owners`` as approvers.
        service: the new service's name (DNS-1035 label).
        owners: forge logins or org/teams: CODEOWNERS, and the app's owners if the app is new.
        template: the service template (``python``).
        port: the port the service listens on.
        database: ``none``, ``postgres`` or ``mongodb``; recorded in the Service file.
        auto_merge: merge the infra pull request at once (default; nothing reaches prod without a release).
    """
    request = OnboardRequest(app, service, list(owners), template, port, database).validate()
    cfg = load_platform()
    forge = forge_for(cfg)
    log = get_run_logger()
    timings = Timings()
    with run_workspace(cfg) as work:
        with timings.step("read spec"):
            spec = load_spec(infra_repo(cfg, work / "infra").sync())
    answers = forge.read_file(request.repository, ANSWERS_FILE) \
        if forge.get_repo(request.repository) and forge.head_commit(request.repository) else None
    rerun = check_onboarding_target(request, spec, cfg.registry, answers)
    app_is_new = request.app not in spec.apps
    undo = Compensations()
    try:
        summary = _onboard(request, cfg, forge, undo, timings, app_is_new=app_is_new,
                           registered=(request.app, request.service) in spec.services,
                           auto_merge=auto_merge, rerun=rerun)
    except Exception:
        if len(undo):
            report = undo.run()
            log.error("onboarding of %s/%s failed; undone: %s%s", app, service, "; ".join(report.undone) or "nothing",
                      f"; COULD NOT UNDO: {'; '.join(report.failed)}" if report.failed else "")
        raise
    if summary.already_onboarded:
        log.info("%s/%s is already onboarded; nothing changed", app, service)
    return summary


def _onboard(request: OnboardRequest, cfg: PlatformSettings, forge: Forge, undo: Compensations, timings: Timings,
             *, app_is_new: bool, registered: bool, auto_merge: bool, rerun: bool) -> OnboardingSummary:
    changed: list[str] = []
    with timings.step("publish template"):
        template = publish_template_task(request.template, cfg)
    if template.created:
        changed.append(f"template {template.version} published")

    if forge.get_repo(request.repository) is None or forge.head_commit(request.repository) is None:
        # Registered before the step runs, so a step that dies half-way is undone as well.
        undo.add(f"delete repository {request.repository}", lambda: forge.delete_repo(request.repository))
    with timings.step("render repository"):
        rendered = render_repo_task(render_repo.Config(
            repository=request.repository, template_url=template.clone_url, template_version=template.version,
            answers=_answers(request, cfg), description=f"{request.app}/{request.service}"), cfg)
    if rendered.files:
        changed.append(f"repository {rendered.repository} rendered")
    _fail_after_for_tests(render_repo.KIND)

    with timings.step("configure repository"):
        configured = configure_repo_task(configure_repo.Config(
            repository=request.repository, variables=_variables(request, cfg), secrets=_secrets()), cfg)
    changed += configured.changed
    _fail_after_for_tests(configure_repo.KIND)

    registration = register_in_infra.Config(
        infra_repo=cfg.infra_repo, service=service_spec(request, cfg.registry), auto_merge=auto_merge,
        new_app=App(name=request.app, owners=request.logins, approvers=request.logins) if app_is_new else None)
    if not registered:
        undo.add(f"undo the infra registration ({registration.branch})",
                 lambda: register_in_infra.compensate(registration, forge))
    with timings.step("register in infra repo"):
        registered_result = register_in_infra_task(registration, cfg)
    if registered_result.pr_created or registered_result.merged_now:
        changed.append(f"infra PR #{registered_result.pr_number} {registered_result.state}")
    _fail_after_for_tests(register_in_infra.KIND)

    with timings.step("namespaces"):
        spaces = ensure_namespaces_task(ensure_namespaces.Config(app=request.app), cfg)
    changed += [f"namespace {name} created" for name in spaces.created]
    with timings.step("harden stages"):
        # Pod Security, quotas, network policies and RBAC of <app>-test / <app>-prod (ensure-app-stages).
        hardened = ensure_app_stages_task(ensure_app_stages.Config(app=request.app), cfg)
    if hardened.created or hardened.updated:
        changed.append(f"stage policies: {len(hardened.created)} created, {len(hardened.updated)} repaired")
    _fail_after_for_tests(ensure_namespaces.KIND)

    database = request.database
    if request.database != "none" and registered_result.state == "registered":
        with timings.step("test database"):
            database = _test_database(request, cfg, undo, changed)

    summary = OnboardingSummary(
        app=request.app, service=request.service, already_onboarded=rerun and not changed,
        repository=rendered.repository, repository_url=rendered.web_url, template_version=template.version,
        app_created=app_is_new and registered_result.state == "registered", infra_pr=registered_result.pr_number,
        infra_pr_url=registered_result.pr_url, infra_state=registered_result.state, namespaces=spaces.namespaces,
        database=database, changed=changed)
    publish(summary, timings)
    _fail_after_for_tests(SUMMARY_STEP)
    return summary


def _test_database(request: OnboardRequest, cfg: PlatformSettings, undo: Compensations, changed: list[str]) -> str:
    """Provision the service's test database (the provision-database flow, as a subflow); undone
    with the rest if onboarding fails afterwards. Returns what the summary shows."""
    from flows.provision_database import provision_database
    from stageflow.adapters.helm import Helm
    from stageflow.adapters.kube import Kube
    from stageflow.gitops import InfraRepo
    from stageflow.steps import deprovision_test_database, record_database
    from tasks.forge import git_auth_header

    with run_workspace(cfg) as work:
        existed = load_spec(infra_repo(cfg, work / "infra").sync()).database(request.app, request.service, "test")
    db = provision_database(app=request.app, service=request.service, stage="test", engine=request.database)
    if existed is None:
        changed.append(f"test database {db.instance} in {namespace(request.app, 'test')}")

        def remove() -> None:
            deprovision_test_database.run(deprovision_test_database.Config(app=request.app, service=request.service),
                                          Helm(cfg.kubeconfig), Kube(cfg.kubeconfig))
            repo = forge_for(cfg).get_repo(cfg.infra_repo)
            infra = InfraRepo(repo.clone_url, cfg.workdir / "onboarding-undo" / request.service,
                              auth_header=git_auth_header(cfg))
            record_database.run(record_database.Config(database=db, remove=True), infra)

        undo.add(f"remove the test database {db.instance}", remove)
    return f"{db.engine}: {db.host}:{db.port}, credentials in {db.credentials}"


def _answers(request: OnboardRequest, cfg: PlatformSettings) -> dict[str, object]:
    return {"app": request.app, "service": request.service, "port": request.port, "owners": request.owners,
            "database": request.database, "registry": cfg.registry}


def _variables(request: OnboardRequest, cfg: PlatformSettings) -> dict[str, str]:
    return {"REGISTRY": cfg.registry, "PREFECT_API_URL": cfg.prefect_api_url,
            "STAGEFLOW_APP": request.app, "STAGEFLOW_SERVICE": request.service}


def _secrets() -> dict[str, SecretStr]:
    key = os.environ.get(CI_API_KEY_ENV)
    return {"PREFECT_API_KEY": SecretStr(key)} if key else {}


def _fail_after_for_tests(step: str) -> None:
    if os.environ.get(FAIL_AFTER_ENV) == step:
        raise StepFailedForTest(f"{FAIL_AFTER_ENV}={step}: failing on purpose after {step}")


def publish(summary: OnboardingSummary, timings: Timings) -> None:
    """The run's markdown artifact: where things are and what to do next."""
    status = "already onboarded: nothing changed" if summary.already_onboarded else \
        ("; ".join(summary.changed) or "nothing changed")
    pr = f"[#{summary.infra_pr}]({summary.infra_pr_url}) ({summary.infra_state})" if summary.infra_pr else \
        f"none needed ({summary.infra_state})"
    database = summary.database  # "none", or what provision-database made
    if summary.database in ("postgres", "mongodb"):  # asked for, but the registration is not merged yet
        database = f"{summary.database}: requested; provision it once the infra pull request is merged " \
                   f"(`stageflow db provision {summary.app} {summary.service} --stage test`)"
    merge_note = "" if summary.infra_state == "registered" else \
        "\n0. Merge the infra pull request above: until then the platform does not know the service."
    test_ns = namespace(summary.app, "test")
    markdown = f"""# {summary.app}/{summary.service} onboarded

| | |
|---|---|
| result | {status} |
| repository | [{summary.repository}]({summary.repository_url}) (template {summary.template_version}) |
| infra pull request | {pr} |
| namespaces | {', '.join(f'`{n}`' for n in summary.namespaces)} |
| database | {database} |

## Next steps{merge_note}
1. Clone the repository and open it in its Dev Container (VS Code: "Reopen in Container").
2. Push to `main`: CI tests, builds and pushes `image:<commit>`, and `build-to-test` rolls it out to `{test_ns}`.
3. Try changes against the test stage with `make intercept` (Telepresence into `{test_ns}`).
4. Publish a release to ship to prod through `release-to-prod`.

## Timings
{timings.markdown()}
"""
    create_markdown_artifact(markdown=markdown, key=f"onboarding-{summary.app}-{summary.service}",
                             description=f"onboarding of {summary.app}/{summary.service}")
