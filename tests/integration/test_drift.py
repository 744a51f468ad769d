"""detect-drift against the real embedded platform: manual changes in the cluster (a scaled
Deployment, an edited image, a deleted NetworkPolicy, values changed behind the repo's back, a
release nobody declared) are reported, and ``heal=True`` undoes them."""
from __future__ import annotations

import time

import pytest
from kubernetes import client, config

from flows.build_to_test import build_to_test
from flows.detect_drift import detect_drift
from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.spec import load_spec
from stageflow.steps import detect_drift as detect, ensure_app_stages, heal_drift, helm_deploy
from tests.integration.helpers import helm_revision, infra, new_service, push_change

pytestmark = pytest.mark.integration

APP, SERVICE, NS = "drifty", "web", "drifty-test"
OTHER_DIGEST = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def deployed(settings):
    """drifty/web running in drifty-test, and both drifty stages hardened."""
    svc = new_service(settings, APP, SERVICE)
    commit, digest = push_change(settings, svc, "drift v1")
    build_to_test(app=APP, service=SERVICE, commit=commit)
    with ensure_app_stages.connect(settings.kubeconfig) as api:
        ensure_app_stages.run(ensure_app_stages.Config(app=APP), api)
    return svc, digest


@pytest.fixture
def apps(settings) -> client.AppsV1Api:
    return client.AppsV1Api(config.new_client_from_config(str(settings.kubeconfig)))


@pytest.fixture
def networking(settings) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(config.new_client_from_config(str(settings.kubeconfig)))


@pytest.fixture
def core(settings) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(settings.kubeconfig)))


def kinds(drifts: list[dict]) -> set[tuple[str, str]]:
    return {(d["kind"], d["service"] or d["object"]) for d in drifts}


def latest_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        found = {a.key: a for a in prefect.read_latest_artifacts(limit=100)}
    return str(found[key].data)


def test_nothing_drifts_right_after_a_deploy(deployed):
    assert detect_drift(app=APP) == []
    assert "no drift" in latest_artifact("drift")


def test_manual_changes_are_reported_and_heal_undoes_them(settings, deployed, apps, networking, core):
    svc, digest = deployed
    revision = helm_revision(settings, APP, SERVICE)
    # (a) kubectl scale, (b) kubectl set image, (c) kubectl delete networkpolicy, (d) kubectl edit quota
    apps.patch_namespaced_deployment_scale(SERVICE, NS, {"spec": {"replicas": 3}})
    apps.patch_namespaced_deployment(SERVICE, NS, {"spec": {"template": {"spec": {"containers": [
        {"name": SERVICE, "image": f"{svc.image}@{OTHER_DIGEST}"}]}}}})
    networking.delete_namespaced_network_policy("allow-dns", NS)
    core.patch_namespaced_resource_quota(ensure_app_stages.QUOTA, NS, {"spec": {"hard": {"pods": "999"}}})

    found = detect_drift(app=APP)

    assert kinds(found) == {("replicas", SERVICE), ("image", SERVICE), ("policy-missing", "NetworkPolicy/allow-dns"),
                            ("policy-changed", f"ResourceQuota/{ensure_app_stages.QUOTA} spec")}
    by_kind = {d["kind"]: d for d in found}
    assert (by_kind["replicas"]["expected"], by_kind["replicas"]["actual"]) == ("1", "3")
    assert by_kind["image"] == {**by_kind["image"], "expected": f"{svc.image}@{digest}",
                                "actual": f"{svc.image}@{OTHER_DIGEST}", "stage": "test"}
    assert (by_kind["policy-changed"]["expected"], by_kind["policy-changed"]["actual"]) == (
        'spec.hard.pods="50"', 'spec.hard.pods="999"')
    # Detecting is read-only: the cluster still has every manual change, Helm no new revision.
    assert apps.read_namespaced_deployment(SERVICE, NS).spec.replicas == 3
    assert helm_revision(settings, APP, SERVICE) == revision
    report = latest_artifact("drift")
    assert "| replicas |" in report and OTHER_DIGEST in report and "NetworkPolicy/allow-dns" in report

    remaining = detect_drift(app=APP, heal=True)

    assert remaining == []
    live = apps.read_namespaced_deployment(SERVICE, NS)
    assert live.spec.replicas == 1
    assert live.spec.template.spec.containers[0].image == f"{svc.image}@{digest}"
    assert networking.read_namespaced_network_policy("allow-dns", NS).spec.policy_types == ["Egress"]
    assert core.read_namespaced_resource_quota(ensure_app_stages.QUOTA, NS).spec.hard["pods"] == "50"
    # One upgrade with unchanged values put the Deployment back (Helm's three-way merge).
    assert helm_revision(settings, APP, SERVICE) == revision + 1
    assert "Remaining after healing" in latest_artifact("drift")
    assert detect_drift(app=APP) == []


def test_values_changed_behind_the_repos_back_are_reported_and_healed(settings, deployed, apps):
    spec = load_spec(infra(settings, "drift-values").sync())
    version = spec.version(APP, SERVICE, "test")
    values = helm_deploy.chart_values(spec.service(APP, SERVICE), version)
    helm = Helm(settings.kubeconfig)
    helm.upgrade_install(SERVICE, settings.chart, NS, {**values, "replicaCount": 2}, create_namespace=False)

    found = detect_drift(app=APP)

    assert kinds(found) == {("values", SERVICE), ("replicas", SERVICE)}
    values_drift = next(d for d in found if d["kind"] == "values")
    assert values_drift["expected"] == "replicaCount=1" and values_drift["actual"] == "replicaCount=2"

    assert detect_drift(app=APP, heal=True) == []
    assert apps.read_namespaced_deployment(SERVICE, NS).spec.replicas == 1
    assert helm.get_values(SERVICE, NS)["replicaCount"] == 1


def test_a_deleted_deployment_is_reported_and_created_again(settings, deployed, apps):
    svc, digest = deployed
    apps.delete_namespaced_deployment(SERVICE, NS, propagation_policy="Foreground")
    _wait_until_gone(apps)

    assert kinds(detect_drift(app=APP)) == {("missing-deployment", SERVICE)}
    assert detect_drift(app=APP, heal=True) == []
    assert apps.read_namespaced_deployment(SERVICE, NS).spec.template.spec.containers[0].image == f"{svc.image}@{digest}"


def _wait_until_gone(apps: client.AppsV1Api, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            apps.read_namespaced_deployment(SERVICE, NS)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.2)
    raise AssertionError(f"{NS}/{SERVICE} still there after {timeout}s")


def test_heal_rechecks_first_so_a_stale_report_changes_nothing(settings, deployed, apps):
    apps.patch_namespaced_deployment_scale(SERVICE, NS, {"spec": {"replicas": 2}})
    spec = load_spec(infra(settings, "drift-stale").sync())
    helm, kube = Helm(settings.kubeconfig), Kube(settings.kubeconfig)
    with ensure_app_stages.connect(settings.kubeconfig) as api:
        report = detect.run(detect.Config(app=APP), spec, helm, kube, api)
        assert [d.kind for d in report.drifts] == ["replicas"]
        first = heal_drift.run(heal_drift.Config(drifts=report.drifts, chart=settings.chart), spec, helm, kube, api)
        revision = helm_revision(settings, APP, SERVICE)

        again = heal_drift.run(heal_drift.Config(drifts=report.drifts, chart=settings.chart), spec, helm, kube, api)

        assert first.services == [(APP, "test", SERVICE)] and again.healed == [] and again.skipped == []
        assert helm_revision(settings, APP, SERVICE) == revision
        assert detect.run(detect.Config(app=APP), spec, helm, kube, api).clean


def test_a_release_the_repo_does_not_know_is_reported_and_left_alone(settings, deployed):
    spec = load_spec(infra(settings, "drift-unmanaged").sync())
    values = helm_deploy.chart_values(spec.service(APP, SERVICE), spec.version(APP, SERVICE, "test"))
    helm = Helm(settings.kubeconfig)
    helm.upgrade_install("stray", settings.chart, NS, {**values, "replicaCount": 0}, create_namespace=False)
    try:
        assert kinds(detect_drift(app=APP)) == {("unmanaged", "stray")}
        assert kinds(detect_drift(app=APP, heal=True)) == {("unmanaged", "stray")}
        assert helm.status("stray", NS) is not None  # never uninstalled by healing
        assert "uninstall it or add it to the repo" in latest_artifact("drift")
    finally:
        helm.uninstall("stray", NS)
    assert detect_drift(app=APP) == []


def test_an_unknown_app_is_refused(deployed):
    from stageflow.errors import NotFound, ValidationFailed

    with pytest.raises(ValidationFailed):
        detect_drift(app="Bad_App")
    with pytest.raises(NotFound, match="nosuchapp"):
        detect_drift(app="nosuchapp")


def test_the_cli_reports_drift_heals_it_and_status_shows_the_last_result(settings, deployed, apps):
    from tests.integration.release_helpers import cli

    apps.patch_namespaced_deployment_scale(SERVICE, NS, {"spec": {"replicas": 4}})
    code, out = cli("drift", "--app", APP)
    assert code == 1 and f"{APP}/{SERVICE} test: replicas: expected 1, found 4" in out
    code, out = cli("status", "--app", APP)
    assert code == 0 and "drift at the last detect-drift run" in out and "replicas" in out
    code, out = cli("drift", "--app", APP, "--heal")
    assert code == 0 and "no drift" in out
    code, out = cli("status", "--app", APP)
    assert "drift: none at the last detect-drift run" in out
