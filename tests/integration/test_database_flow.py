"""provision-database / deprovision-database at the test stage, end to end through the CLI on the
embedded platform: real Helm release, Secret, PVC, infra repo record and service wiring."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from stageflow.adapters.kube import Kube
from stageflow.spec import database_path
from tests.integration.helpers import helm_revision, infra, infra_head, push_change
from tests.integration.release_helpers import all_artifacts, all_logs, cli, released_service

pytestmark = pytest.mark.integration

APP = "dbs"
RUN = uuid.uuid4().hex[:5]


def env_from(settings, service: str) -> list[str]:
    from kubernetes import client, config

    api = client.AppsV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    dep = api.read_namespaced_deployment(service, f"{APP}-test")
    return [e.secret_ref.name for e in (dep.spec.template.spec.containers[0].env_from or []) if e.secret_ref]


def test_a_service_gets_its_own_test_database_wired_in_and_can_give_it_back(settings):
    from flows.build_to_test import build_to_test

    svc = released_service(settings, APP, f"orders-{RUN}")
    commit, _ = push_change(settings, svc, "orders with a db")
    build_to_test(app=APP, service=svc.name, commit=commit)
    assert env_from(settings, svc.name) == []

    code, out = cli("db", "provision", APP, svc.name, "--stage", "test", "--engine", "postgres")
    assert code == 0, out
    kube = Kube(settings.kubeconfig)
    secret = f"{svc.name}-db"
    password = kube.read_secret(f"{APP}-test", secret)["password"].get_secret_value()
    assert kube.wait_for_statefulset(f"{APP}-test", secret, timeout=30) == (1, 1)
    assert env_from(settings, svc.name) == [secret]
    checkout = infra(settings, f"db-{RUN}")
    recorded = (checkout.workdir / database_path(APP, svc.name, "test")).read_text()
    assert f"credentials: kubernetes:{APP}-test/{secret}" in recorded and "provider: helm" in recorded
    assert "database: postgres" in (checkout.workdir / f"apps/{APP}/services/{svc.name}.yaml").read_text()

    # Re-running changes nothing: no infra commit, no Helm revision, the same credentials.
    head, revision = infra_head(settings), helm_revision(settings, APP, svc.name)
    code, out = cli("db", "provision", APP, svc.name, "--stage", "test")
    assert code == 0, out
    assert (infra_head(settings), helm_revision(settings, APP, svc.name)) == (head, revision)
    assert kube.read_secret(f"{APP}-test", secret)["password"].get_secret_value() == password

    # A second engine for the same service is refused before anything happens.
    code, out = cli("db", "provision", APP, svc.name, "--stage", "test", "--engine", "mongodb")
    assert code == 1 and "engine: is 'mongodb' but the service declares database: 'postgres'" in out

    # Deleting needs the confirmation; then the service is unwired first, and everything goes.
    code, out = cli("db", "deprovision", APP, svc.name, "--stage", "test", "--confirm", "wrong")
    assert code == 1 and f"confirm: must be '{APP}/{svc.name}'" in out
    assert kube.read_secret(f"{APP}-test", secret) is not None
    code, out = cli("db", "deprovision", APP, svc.name, "--stage", "test", "--confirm", f"{APP}/{svc.name}")
    assert code == 0, out
    assert kube.read_secret(f"{APP}-test", secret) is None and env_from(settings, svc.name) == []
    checkout.sync()
    assert not (checkout.workdir / database_path(APP, svc.name, "test")).exists()

    # The generated password is nowhere in the infrastructure repo's history, the runs' logs or artifacts.
    history = subprocess.run(["git", "log", "-p", "--all"], cwd=checkout.workdir, capture_output=True, text=True,
                             check=True).stdout
    assert password not in history
    for where, text in (("logs", all_logs()), ("artifacts", all_artifacts())):
        assert password not in text, f"the generated password leaked into the {where}"


def test_another_chart_chosen_in_the_platform_spec_is_used_for_test_databases(settings):
    """platform.yaml `test_databases` picks another chart (here Stageflow's own chart, pushed to the
    embedded OCI registry as a private registry would hold Bitnami's or CloudNativePG's), with the
    platform's values and the ${release}/${secret} placeholders filled in."""
    from stageflow.adapters.helm import Helm
    from stageflow.settings import PROJECT_ROOT
    from stageflow.spec import parse_file, platform_path, to_yaml
    from stageflow.spec.models import TestDatabaseChart

    helm = Helm(settings.kubeconfig)
    ref = helm.push(PROJECT_ROOT / "charts" / "database", f"oci://{settings.registry}/charts", plain_http=True)
    checkout = infra(settings, f"dbchart-{RUN}")
    original = (checkout.sync() / platform_path()).read_text()
    platform = parse_file(platform_path(), original)
    chosen = platform.model_copy(update={"test_databases": {"mongodb": TestDatabaseChart(
        chart=ref, version="0.1.0", values={"engine": "mongodb", "auth": {"existingSecret": "${secret}"},
                                            "persistence": {"size": "2Gi"}})}})
    checkout.commit_and_push({platform_path(): to_yaml(chosen)}, "test: mongodb test databases from OCI",
                             {"Stageflow-Target": "platform"})
    try:
        svc = released_service(settings, APP, f"events-{RUN}")
        code, out = cli("db", "provision", APP, svc.name, "--stage", "test", "--engine", "mongodb")
        assert code == 0, out
        release = f"{svc.name}-db"
        assert helm.get_values(release, f"{APP}-test") == {
            "engine": "mongodb", "auth": {"existingSecret": release}, "persistence": {"size": "2Gi"}}
        from kubernetes import client, config

        api = client.AppsV1Api(config.new_client_from_config(str(settings.kubeconfig)))
        sts = api.read_namespaced_stateful_set(release, f"{APP}-test")
        assert sts.spec.template.spec.containers[0].image.startswith("mongo:")
        assert sts.status.ready_replicas == 1
        # Re-running with the same spec changes nothing.
        revisions = len(helm.history(release, f"{APP}-test"))
        assert cli("db", "provision", APP, svc.name, "--stage", "test")[0] == 0
        assert len(helm.history(release, f"{APP}-test")) == revisions
    finally:
        checkout.sync()
        checkout.commit_and_push({platform_path(): original}, "test: back to the default test database chart",
                                 {"Stageflow-Target": "platform"})
