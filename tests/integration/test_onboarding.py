"""onboard-service against the real embedded platform: the local forge, Copier, the Prefect server,
kube-apiserver + kwok, Helm, the Docker engine and the registry."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import docker
import pytest
import yaml
from kubernetes import client, config

from flows.build_to_test import build_to_test
from flows.onboard_service import CI_API_KEY_ENV, FAIL_AFTER_ENV, SUMMARY_STEP, StepFailedForTest, onboard_service
from stageflow.adapters.forge.factory import forge_from_settings
from stageflow.adapters.images import Images
from stageflow.errors import TerminalError, ValidationFailed
from stageflow.local.base_images import ensure_python_base_image
from stageflow.local.demo import register_service
from stageflow.onboarding import configure_repo, ensure_namespaces, register_in_infra, render_repo
from stageflow.spec import load_spec, service_path
from tests.integration.helpers import infra, infra_head

pytestmark = pytest.mark.integration

# Names unique to this session, so a platform kept between runs (STAGEFLOW_TEST_HOME) starts clean.
RUN = uuid.uuid4().hex[:5]
APP = f"store{RUN}"
CI_API_KEY = "pnu_onboarding-test-" + uuid.uuid4().hex
STEPS = [render_repo.KIND, configure_repo.KIND, register_in_infra.KIND, ensure_namespaces.KIND, SUMMARY_STEP]


def assert_image_runs_healthy_as_non_root(settings, image: str) -> None:
    """Start the image (no network needed) and wait for its own HEALTHCHECK to call /healthz."""
    engine = docker.DockerClient(base_url=settings.docker_host)
    try:
        assert engine.images.get(image).attrs["Config"]["User"] == "10001:10001"
        container = engine.containers.run(image, detach=True, network_mode="none")
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                container.reload()
                health = container.attrs["State"].get("Health", {}).get("Status")
                if health in ("healthy", "unhealthy") or container.status == "exited":
                    break
                time.sleep(1)
            assert health == "healthy", container.logs().decode()[-2000:]
        finally:
            container.remove(force=True)
    finally:
        engine.close()


def namespaces(settings) -> dict[str, dict[str, str]]:
    core = client.CoreV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    return {ns.metadata.name: ns.metadata.labels or {} for ns in core.list_namespace().items}


def repos(settings) -> list[str]:
    return sorted(p.name for p in settings.forge_root.glob("*.git"))


def pulls(forge, branch: str) -> list:
    return [pr for pr in (forge.get_pull_request("infrastructure", n) for n in range(1, 200)) if pr and pr.head == branch]


@pytest.fixture(scope="module")
def store(settings):
    """App `store<run>` with service `orders`, onboarded once (with a database and a CI API key)."""
    os.environ[CI_API_KEY_ENV] = CI_API_KEY
    try:
        return onboard_service(app=APP, service="orders", owners=["alice", "bob"], database="postgres", port=8080)
    finally:
        del os.environ[CI_API_KEY_ENV]


def test_onboarding_creates_repo_registration_and_namespaces(settings, store):
    forge = forge_from_settings(settings)
    assert not store.already_onboarded and store.infra_state == "registered"
    answers = yaml.safe_load(forge.read_file(f"{APP}-orders", ".copier-answers.yml"))
    assert answers["_commit"] == store.template_version and answers["_src_path"].endswith("stageflow-template-python.git")
    assert forge.get_branch_protection(f"{APP}-orders").required_checks == ["test"]
    assert forge.get_variables(f"{APP}-orders") == {
        "PREFECT_API_URL": settings.prefect_api_url, "REGISTRY": settings.registry,
        "STAGEFLOW_APP": APP, "STAGEFLOW_SERVICE": "orders"}
    spec = load_spec(infra(settings, "onboarding").sync())
    svc = spec.service(APP, "orders")
    assert (svc.repository, svc.database, svc.image) == (f"{APP}-orders", "postgres", f"{settings.registry}/{APP}/orders")
    assert spec.app(APP).approvers == ["alice", "bob"]
    assert spec.version(APP, "orders", "prod") is None  # prod stays empty until the first release
    pr = forge.get_pull_request("infrastructure", store.infra_pr)
    assert (pr.state, pr.head) == ("merged", f"onboard/{APP}-orders")
    found = namespaces(settings)
    for stage in ("test", "prod"):
        assert found[f"{APP}-{stage}"]["stageflow.dev/stage"] == stage
    # The database asked for is provisioned for the test stage and recorded.
    from stageflow.adapters.kube import Kube

    assert Kube(settings.kubeconfig).secret_keys(f"{APP}-test", "orders-db") is not None
    assert spec.database(APP, "orders", "test").credentials == f"kubernetes:{APP}-test/orders-db"
    assert store.database.startswith(f"postgres: orders-db.{APP}-test.svc")

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        keys = {a.key: a for a in prefect.read_latest_artifacts(limit=50)}
    artifact = keys[f"onboarding-{APP}-orders"].data
    assert f"{APP}-orders" in artifact and "Next steps" in artifact and "postgres" in artifact
    assert forge.list_secrets(f"{APP}-orders") == ["PREFECT_API_KEY"]
    assert CI_API_KEY not in artifact  # the secret's value is written to the forge and nowhere else


def test_rerun_reports_already_onboarded_and_changes_nothing(settings, store):
    forge = forge_from_settings(settings)
    before = (infra_head(settings), forge.head_commit(f"{APP}-orders"), repos(settings),
              len(pulls(forge, f"onboard/{APP}-orders")))
    again = onboard_service(app=APP, service="orders", owners=["alice", "bob"], database="postgres")
    assert again.already_onboarded and again.changed == []
    assert again.infra_pr == store.infra_pr
    assert (infra_head(settings), forge.head_commit(f"{APP}-orders"), repos(settings),
            len(pulls(forge, f"onboard/{APP}-orders"))) == before


@pytest.mark.parametrize("kwargs, field", [
    ({"app": "Store"}, "app"),
    ({"service": "or_ders"}, "service"),
    ({"app": "a" * 59}, "app"),
    ({"app": "kube-public"}, "app"),
    ({"template": "cobol"}, "template"),
    ({"owners": []}, "owners"),
])
def test_bad_input_fails_before_anything_is_created(settings, kwargs, field):
    before = (repos(settings), infra_head(settings))
    with pytest.raises(ValidationFailed) as caught:
        onboard_service(**{"app": "badshop", "service": "cart", "owners": ["alice"], **kwargs})
    assert field in {p.field for p in caught.value.problems}
    assert (repos(settings), infra_head(settings)) == before


def test_an_existing_service_is_refused_before_anything_is_created(settings):
    register_service(settings, "legacy", "api")  # registered by hand, not by onboarding
    before = (repos(settings), infra_head(settings))
    with pytest.raises(ValidationFailed, match="already exists"):
        onboard_service(app="legacy", service="api", owners=["alice"])
    assert (repos(settings), infra_head(settings)) == before


@pytest.mark.parametrize("step", STEPS)
def test_a_run_killed_after_each_step_is_undone_and_a_rerun_converges(settings, monkeypatch, step):
    forge = forge_from_settings(settings)
    service = "s" + step.split(":")[-1].replace("-", "")[:20] + RUN
    branch = f"onboard/kill-{service}"
    monkeypatch.setenv(FAIL_AFTER_ENV, step)
    with pytest.raises(StepFailedForTest):
        onboard_service(app="kill", service=service, owners=["carol"])
    # Undone: no repository, no registration, no branch; the PR is closed or reverted.
    assert f"kill-{service}.git" not in repos(settings)
    assert forge.read_file("infrastructure", service_path("kill", service)) is None
    assert branch not in forge.list_branches("infrastructure")
    assert all(pr.state != "open" for pr in pulls(forge, branch))

    monkeypatch.delenv(FAIL_AFTER_ENV)
    done = onboard_service(app="kill", service=service, owners=["carol"])
    assert done.infra_state == "registered" and not done.already_onboarded
    assert repos(settings).count(f"kill-{service}.git") == 1
    merged = [pr for pr in pulls(forge, branch) if pr.state == "merged"]
    spec = load_spec(infra(settings, "onboarding").sync())
    assert spec.service("kill", service).repository == f"kill-{service}"
    assert [pr.state for pr in pulls(forge, branch)].count("open") == 0 and merged[-1].number == done.infra_pr
    assert onboard_service(app="kill", service=service, owners=["carol"]).already_onboarded


def test_first_push_to_main_deploys_the_generated_service(settings, store, tmp_path: Path):
    """What the generated CI does on the first push to main: build the image from the repository
    (the Dockerfile runs the service's tests), push image:<commit>, call build-to-test."""
    forge = forge_from_settings(settings)
    work = tmp_path / f"{APP}-orders"
    subprocess.run(["git", "clone", "--quiet", forge.get_repo(f"{APP}-orders").clone_url, str(work)], check=True)
    commit = forge.head_commit(f"{APP}-orders")
    try:
        base = ensure_python_base_image(settings.docker_host, progress=print)
    except TerminalError as exc:
        pytest.skip(f"no local Python base image: {exc}")
    svc = load_spec(infra(settings, "onboarding").sync()).service(APP, "orders")
    with Images(settings.docker_host) as images:
        digest = images.build_and_push(work, svc.image, commit, buildargs={"BASE_IMAGE": base})
    assert_image_runs_healthy_as_non_root(settings, f"{svc.image}:{commit}")
    summary = build_to_test(app=APP, service="orders", commit=commit)
    assert summary.digest == digest and summary.ready == summary.desired == 1
    assert summary.namespace == f"{APP}-test"


def test_update_service_template_opens_a_pr_with_the_newer_version(settings, store, tmp_path: Path):
    from flows.update_service_template import update_service_template
    from stageflow.onboarding.request import TEMPLATES
    from stageflow.onboarding.template_repo import publish_template, template_version

    forge = forge_from_settings(settings)
    folder = shutil.copytree(TEMPLATES["python"], tmp_path / "template")
    newer = f"{template_version(folder)}.post1"
    (folder / "VERSION").write_text(newer + "\n")
    (folder / "template" / "SECURITY.md").write_text("Report vulnerabilities to the platform team.\n")
    publish_template(forge, "python", folder=folder)

    (result,) = update_service_template(app=APP, service="orders")
    assert (result.state, result.from_version, result.to_version) == ("proposed", store.template_version, newer)
    assert result.conflicts == [] and result.pr_created
    pr = forge.get_pull_request(f"{APP}-orders", result.pr_number)
    assert pr.state == "open" and forge.read_file(f"{APP}-orders", "SECURITY.md", pr.head) is not None
    (again,) = update_service_template(app=APP, service="orders")
    assert (again.pr_number, again.pr_created) == (result.pr_number, False)


def test_a_run_that_died_without_undoing_is_adopted_by_the_rerun(settings):
    """SIGKILL leaves no chance to compensate: what the dead run made (here: the repository and a
    merged registration, made by the steps themselves) is adopted, and nothing is duplicated."""
    from stageflow.onboarding.request import OnboardRequest, service_spec
    from stageflow.onboarding.template_repo import publish_template
    from stageflow.spec import App

    forge = forge_from_settings(settings)
    service = f"dead{RUN}"
    request = OnboardRequest("kill", service, ["carol"]).validate()
    template = publish_template(forge, "python")
    render_repo.run(render_repo.Config(
        repository=request.repository, template_url=template.clone_url, template_version=template.version,
        answers={"app": "kill", "service": service, "port": 8080, "owners": ["carol"], "database": "none",
                 "registry": settings.registry}), forge)
    app_is_new = "kill" not in load_spec(infra(settings, "onboarding").sync()).apps
    dead = register_in_infra.run(register_in_infra.Config(
        infra_repo="infrastructure", service=service_spec(request, settings.registry),
        new_app=App(name="kill", owners=["carol"], approvers=["carol"]) if app_is_new else None), forge)
    repo_head = forge.head_commit(request.repository)

    done = onboard_service(app="kill", service=service, owners=["carol"])
    assert done.infra_pr == dead.pr_number and not done.already_onboarded  # settings were still missing
    assert forge.head_commit(request.repository) == repo_head
    assert len(pulls(forge, f"onboard/kill-{service}")) == 1
    assert repos(settings).count(f"kill-{service}.git") == 1
