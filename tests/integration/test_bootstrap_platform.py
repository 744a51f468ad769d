"""bootstrap-platform on the embedded control plane: the example catalog (examples/core-services.yaml),
with every chart swapped for its stand-in of the same name and version pushed to the embedded OCI
registry, is installed into core-services; the API server validates every object (CRDs,
ClusterIssuer, workloads under baseline Pod Security); a re-run creates no Helm revision; a changed
value upgrades that release alone; a chart that does not exist fails with an error naming the service."""
from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client as k8s
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.bootstrap_platform import bootstrap_platform
from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.errors import TerminalError
from stageflow.spec import Platform, parse_file, platform_path, to_yaml
from stageflow.spec.models import CORE_SERVICES_NAMESPACE as NS
from stageflow.spec.models import CoreService
from stageflow.steps import bootstrap_core_services as step
from stageflow.steps.ensure_app_stages import connect
from tests.integration.helpers import infra

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "core-services.yaml"
STANDINS = ROOT / "stageflow" / "local" / "core-charts"
CRDS = ("certificates.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io")
STATEFULSETS = ("loki", "prefect-server-postgresql")


@pytest.fixture(scope="module")
def catalog(settings) -> list[CoreService]:
    """The example catalog, pointing at the stand-ins in the embedded registry, committed to the
    infrastructure repo's platform.yaml; the original platform.yaml is put back afterwards."""
    helm = Helm(settings.kubeconfig)
    refs = {chart.name: helm.push(chart, f"oci://{settings.registry}/charts", plain_http=True)
            for chart in sorted(STANDINS.iterdir()) if (chart / "Chart.yaml").is_file()}
    example = parse_file("platform.yaml", EXAMPLE.read_text())
    services = [s.model_copy(update={"chart": refs[s.chart_name], "repository": None})
                for s in example.core_services]
    services = [CoreService.model_validate(s.model_dump()) for s in services]  # re-checked after the swap
    checkout = infra(settings, "bootstrap-platform")
    file = checkout.sync() / platform_path()
    original = file.read_text()
    current = parse_file(platform_path(), original)
    assert isinstance(current, Platform)
    # `up` already wrote this catalog (stageflow/local/core_services.py): the embedded platform can
    # be bootstrapped as it stands.
    assert [(s.name, s.chart, s.version) for s in current.core_services] == [
        (s.name, s.chart, s.version) for s in services]
    checkout.commit_and_push({platform_path(): to_yaml(current.model_copy(update={"core_services": services}))},
                             "Core services: stand-in catalog for the bootstrap-platform test")
    try:
        yield services
    finally:
        checkout.commit_and_push({platform_path(): original}, "Restore platform.yaml after the bootstrap-platform test")


@pytest.fixture(scope="module")
def first_run(catalog) -> dict:
    return bootstrap_platform()


@pytest.fixture(scope="module")
def api(settings):
    with connect(settings.kubeconfig) as client:
        yield client


def test_every_release_is_deployed_and_ready(settings, catalog, first_run):
    names = [s.name for s in catalog]
    assert sorted(first_run["installed"] + first_run["upgraded"] + first_run["unchanged"]) == sorted(names)
    helm = Helm(settings.kubeconfig)
    with Kube(settings.kubeconfig) as kube:
        for service in catalog:
            release = helm.status(service.name, NS)
            assert release is not None and release.status == "deployed", service.name
            assert release.chart == f"{service.chart_name}-{service.version}"
            deployments = kube.list_deployments(NS, f"app.kubernetes.io/instance={service.name}")
            if service.name != "loki":  # loki's stand-in is a StatefulSet only
                assert deployments, f"{service.name} has no Deployment"
            for deployment in deployments:
                assert deployment.complete and deployment.ready == deployment.desired >= 1, deployment.describe()
        for name in STATEFULSETS:
            status = kube.statefulset_status(NS, name)
            assert status is not None and status.complete, name


def test_namespace_crds_and_cluster_issuer(api, first_run):
    namespace = k8s.CoreV1Api(api).read_namespace(NS)
    assert namespace.metadata.labels["app.kubernetes.io/managed-by"] == "stageflow"
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "baseline"
    extensions = k8s.ApiextensionsV1Api(api)
    for crd in CRDS:
        established = {c.type: c.status for c in extensions.read_custom_resource_definition(crd).status.conditions}
        assert established.get("Established") == "True", crd
    issuer = k8s.CustomObjectsApi(api).get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers",
                                                                 "letsencrypt")
    assert issuer["spec"] == {"selfSigned": {}}


def test_traffic_manager_is_restricted_to_test_stages(api, first_run):
    config = k8s.CoreV1Api(api).read_namespaced_config_map("traffic-manager", NS)
    assert config.data["namespace-selector.yaml"].split() == ["matchLabels:", "stageflow.dev/stage:", "test"]


def test_artifact_lists_every_release(catalog, first_run):
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["core-services"])))
    assert artifacts
    assert all(f"| {s.name} | `{s.chart}` | {s.version} |" in artifacts[0].data for s in catalog)


def test_rerun_creates_no_helm_revision(settings, catalog, first_run):
    helm = Helm(settings.kubeconfig)
    before = {s.name: len(helm.history(s.name, NS)) for s in catalog}
    again = bootstrap_platform()
    assert again["installed"] == [] and again["upgraded"] == []
    assert sorted(again["unchanged"]) == sorted(s.name for s in catalog)
    assert {s.name: len(helm.history(s.name, NS)) for s in catalog} == before
    # The command line runs the same flow: everything unchanged, still no new revision.
    from tests.integration.release_helpers import cli

    code, out = cli("platform", "bootstrap")
    assert code == 0 and "\nunchanged: " in "\n" + out and "installed: " not in out, out
    code, out = cli("platform", "bootstrap", "--only", "no-such-service")
    assert code == 1 and "only: not in the catalog: no-such-service" in out
    assert {s.name: len(helm.history(s.name, NS)) for s in catalog} == before


def test_changed_values_upgrade_that_release_only(settings, catalog, first_run):
    helm = Helm(settings.kubeconfig)
    revisions = {s.name: helm.status(s.name, NS).revision for s in catalog}
    changed = [s.model_copy(update={"values": {**s.values, "domainFilters": ["example.org"]}})
               if s.name == "external-dns" else s for s in catalog]
    with Kube(settings.kubeconfig) as kube:
        result = step.run(step.Config(services=changed, registry_plain_http=True), helm, kube)
    assert result.upgraded == ["external-dns"] and result.installed == []
    assert result.revisions["external-dns"] == revisions["external-dns"] + 1
    assert {n: r for n, r in result.revisions.items() if n != "external-dns"} == {
        n: r for n, r in revisions.items() if n != "external-dns"}
    assert helm.get_values("external-dns", NS)["domainFilters"] == ["example.org"]
    # The catalog in platform.yaml still says example.com: the flow puts it back.
    assert bootstrap_platform()["upgraded"] == ["external-dns"]


def test_missing_chart_fails_naming_the_service(settings, first_run):
    broken = CoreService(name="broken-dns", chart=f"oci://{settings.registry}/charts/no-such-chart", version="1.0.0")
    helm = Helm(settings.kubeconfig)
    with Kube(settings.kubeconfig) as kube, pytest.raises(step.CoreServiceFailed) as caught:
        step.run(step.Config(services=[broken], registry_plain_http=True), helm, kube)
    assert isinstance(caught.value, TerminalError)
    message = str(caught.value)
    assert "core service 'broken-dns'" in message and "no-such-chart" in message and "1.0.0" in message
    assert helm.status("broken-dns", NS) is None
