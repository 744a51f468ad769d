"""charts/service rendered and linted by the real Helm binary (no cluster needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stageflow.adapters.helm import ChartError, Helm, chart_version, helm_binary
from stageflow.errors import TerminalError

CHART = Path(__file__).resolve().parents[2] / "charts" / "service"
REPOSITORY = "registry.local:5000/shop/cart"
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    try:
        binary = helm_binary()
    except TerminalError as exc:
        pytest.skip(f"the helm binary is not built yet (`make setup` runs scripts/build-tools.sh): {exc}")
    # template and lint never contact a cluster; the kubeconfig is passed but not read.
    return Helm(tmp_path_factory.mktemp("helm") / "kubeconfig", binary=binary)


def values(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"app": "shop", "stage": "dev", "image": {"repository": REPOSITORY, "digest": DIGEST}}
    base.update(overrides)
    return base


def render(helm: Helm, vals: dict[str, Any]) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(helm.template("cart", CHART, "shop-dev", vals)) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one resource per kind expected"
    return by_kind


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (meta["apiVersion"], meta["name"], meta["version"], meta["appVersion"]) == ("v2", "service", "0.1.0", "1.0")
    assert chart_version(CHART) == "0.1.0"


def test_lint_passes_with_a_pinned_image(helm: Helm) -> None:
    helm.lint(CHART, values())


def test_lint_rejects_unknown_values(helm: Helm) -> None:
    with pytest.raises(ChartError, match="additional properties 'replicas' not allowed"):
        helm.lint(CHART, values(replicas=3))


def test_image_is_pinned_by_digest(helm: Helm) -> None:
    assert container(render(helm, values()))["image"] == f"{REPOSITORY}@{DIGEST}"


def test_defaults(helm: Helm) -> None:
    manifests = render(helm, values())
    assert set(manifests) == {"Deployment", "Service"}
    spec = manifests["Deployment"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    main = container(manifests)
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert main["resources"]["limits"] and main["resources"]["requests"]
    (port,) = manifests["Service"]["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_security_context(helm: Helm) -> None:
    manifests = render(helm, values())
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(manifests)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}


def test_probes_default_to_healthz_and_follow_the_values(helm: Helm) -> None:
    main = container(render(helm, values()))
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    custom = container(render(helm, values(probes={"path": "/ready"}, port=9000)))
    assert custom["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert custom["ports"][0]["containerPort"] == 9000
    disabled = container(render(helm, values(probes={"enabled": False})))
    assert "readinessProbe" not in disabled and "livenessProbe" not in disabled


def test_labels_and_selector(helm: Helm) -> None:
    manifests = render(helm, values(labels={"team": "checkout"}, podAnnotations={"prometheus.io/scrape": "true"}))
    deployment = manifests["Deployment"]
    wanted = {"app.kubernetes.io/name": "cart", "app.kubernetes.io/instance": "cart",
              "app.kubernetes.io/part-of": "shop", "stageflow.dev/stage": "dev", "team": "checkout"}
    for labels in (deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"],
                   manifests["Service"]["metadata"]["labels"]):
        assert wanted.items() <= labels.items()
    # Selectors are immutable: only the labels that never change belong there.
    selector = {"app.kubernetes.io/name": "cart", "app.kubernetes.io/instance": "cart"}
    assert deployment["spec"]["selector"]["matchLabels"] == selector
    assert manifests["Service"]["spec"]["selector"] == selector
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}


def test_env_and_env_from(helm: Helm) -> None:
    main = container(render(helm, values(env=[{"name": "LOG_LEVEL", "value": "debug"}],
                                         envFrom=[{"secretRef": {"name": "cart-db"}}])))
    assert main["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert main["envFrom"] == [{"secretRef": {"name": "cart-db"}}]


def test_ingress_with_tls_cert_manager_and_external_dns(helm: Helm) -> None:
    ingress = render(helm, values(ingress={
        "enabled": True, "host": "cart.shop.example.com", "className": "nginx", "externalDns": True,
        "tls": {"enabled": True, "clusterIssuer": "letsencrypt"}}))["Ingress"]
    assert ingress["metadata"]["annotations"] == {
        "cert-manager.io/cluster-issuer": "letsencrypt",
        "external-dns.alpha.kubernetes.io/hostname": "cart.shop.example.com"}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["cart.shop.example.com"], "secretName": "cart-tls"}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "cart.shop.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "cart", "port": {"name": "http"}}


def test_plain_ingress_has_no_tls_or_annotations(helm: Helm) -> None:
    ingress = render(helm, values(ingress={"enabled": True, "host": "cart.local"}))["Ingress"]
    assert "annotations" not in ingress["metadata"]
    assert "tls" not in ingress["spec"]


def test_optional_service_account(helm: Helm) -> None:
    manifests = render(helm, values(serviceAccount={"create": True}))
    assert manifests["ServiceAccount"]["metadata"]["name"] == "cart"
    assert manifests["ServiceAccount"]["automountServiceAccountToken"] is False
    assert manifests["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "cart"


@pytest.mark.parametrize("vals, message", [
    ({"app": "shop", "image": {"repository": REPOSITORY}}, "image.digest is required"),
    (values(image={"repository": REPOSITORY, "digest": "latest"}), r"/image/digest.*does not match pattern"),
    (values(image={"repository": REPOSITORY, "digest": "sha256:" + "A" * 64}), r"/image/digest"),
    (values(image={"repository": f"{REPOSITORY}:v1", "digest": DIGEST}), r"/image/repository"),
    (values(replicas=3), "additional properties 'replicas' not allowed"),
    (values(replicaCount="two"), r"/replicaCount"),
    (values(ingress={"enabled": True}), "ingress.host is required"),
    (values(ingress={"enabled": True, "host": "a.b", "tls": {"clusterIssuer": "le"}}), "ingress.tls.enabled is false"),
], ids=["missing-digest", "tag-as-digest", "uppercase-digest", "tag-in-repository", "unknown-key",
        "replicas-not-int", "ingress-without-host", "issuer-without-tls"])
def test_bad_values_fail_with_a_readable_chart_error(helm: Helm, vals: dict[str, Any], message: str) -> None:
    with pytest.raises(ChartError, match=message):
        helm.template("cart", CHART, "shop-dev", vals)
