"""charts/service rendered and linted by the real Helm binary (no cluster needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stageflow.adapters.helm import ChartError, Helm, chart_version, helm_binary
from stageflow.errors import TerminalError
from stageflow.errors import ValidationFailed
from stageflow.spec import ChartRef, Database, DeployedVersion, ImageRef, Service
from stageflow.steps.helm_deploy import chart_values

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
    assert main["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Liveness differs on purpose: a failing health check must not restart the pod in a loop.
    assert main["livenessProbe"]["tcpSocket"] == {"port": "http"} and "httpGet" not in main["livenessProbe"]
    assert main["resources"]["requests"]["ephemeral-storage"] == "64Mi"
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


VERSION = "app.kubernetes.io/version"


def deployment_and_pod_labels(manifests: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    deployment = manifests["Deployment"]
    return deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("tag, label", [
    ("never-ready", "never-ready"),
    ("1.10", "1.10"),  # stays a string, not the YAML number 1.1
    ("a" * 62 + "-" + "b" * 65, "a" * 62),  # 128 characters: cut to 63, then the trailing "-" dropped
    ("_build.7", "build.7"),  # a label value must start with a letter or digit
], ids=["plain", "numeric-looking", "128-chars", "leading-underscore"])
def test_image_tag_becomes_the_version_label_but_not_the_selector(helm: Helm, tag: str, label: str) -> None:
    manifests = render(helm, values(image={"repository": REPOSITORY, "digest": DIGEST, "tag": tag}))
    for labels in deployment_and_pod_labels(manifests):
        assert labels[VERSION] == label
    assert VERSION not in manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    # Informational only: the image is still pulled by digest.
    assert container(manifests)["image"] == f"{REPOSITORY}@{DIGEST}"


def test_no_version_label_without_a_tag(helm: Helm) -> None:
    for labels in deployment_and_pod_labels(render(helm, values())):
        assert VERSION not in labels


def test_lint_passes_with_a_tag(helm: Helm) -> None:
    helm.lint(CHART, values(image={"repository": REPOSITORY, "digest": DIGEST, "tag": "_" + "a" * 127}))


@pytest.mark.parametrize("tag", ["3f9c1e2", None])
def test_helm_deploy_passes_the_built_tag_to_the_chart(helm: Helm, tag: str | None) -> None:
    service = Service(name="cart", app="shop", repository="shop-cart", image=REPOSITORY)
    version = DeployedVersion(app="shop", service="cart", stage="test", chart=ChartRef(),
                              image=ImageRef(repository=REPOSITORY, digest=DIGEST, tag=tag))
    vals = chart_values(service, version)
    assert vals["image"] == {"repository": REPOSITORY, "digest": DIGEST, **({"tag": tag} if tag else {})}
    _, pod = deployment_and_pod_labels(render(helm, vals))
    assert pod.get(VERSION) == tag


def test_env_and_env_from(helm: Helm) -> None:
    main = container(render(helm, values(env=[{"name": "LOG_LEVEL", "value": "debug"}],
                                         envFrom=[{"secretRef": {"name": "cart-db"}}])))
    assert main["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert main["envFrom"] == [{"secretRef": {"name": "cart-db"}}]


def test_no_database_by_default(helm: Helm) -> None:
    assert "envFrom" not in container(render(helm, values()))


def test_database_secret_becomes_env_from(helm: Helm) -> None:
    main = container(render(helm, values(database={"secretName": "cart-db"})))
    assert main["envFrom"] == [{"secretRef": {"name": "cart-db"}}]
    # Explicit envFrom sources stay, the database's Secret comes after them.
    both = container(render(helm, values(envFrom=[{"configMapRef": {"name": "cart-config"}}],
                                         database={"secretName": "cart-db"})))
    assert both["envFrom"] == [{"configMapRef": {"name": "cart-config"}}, {"secretRef": {"name": "cart-db"}}]


@pytest.mark.parametrize("database, message", [
    ({"secretName": "cart-db", "password": "x"}, "additional properties 'password' not allowed"),
    ({}, "secretName"),
    ({"secretName": "Cart_DB"}, "/database/secretName"),
], ids=["unknown-key", "missing-name", "bad-name"])
def test_database_value_is_checked(helm: Helm, database: dict[str, Any], message: str) -> None:
    with pytest.raises(ChartError, match=message):
        helm.template("cart", CHART, "shop-dev", values(database=database))


def _database(credentials: str, service: str = "cart") -> Database:
    return Database(app="shop", service=service, stage="test", engine="postgres", provider="helm",
                    instance=f"{service}-db", host=f"{service}-db.shop-test.svc.cluster.local", port=5432,
                    credentials=credentials)


@pytest.mark.parametrize("credentials, secret", [
    ("kubernetes:shop-test/cart-db", "cart-db"),
    ("kubernetes:shop-prod/cart-db", None),  # another stage's namespace: not mountable here
    ("aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:cart", None),
], ids=["own-namespace", "other-namespace", "cloud-secret"])
def test_helm_deploy_passes_the_database_secret(helm: Helm, credentials: str, secret: str | None) -> None:
    service = Service(name="cart", app="shop", repository="shop-cart", image=REPOSITORY)
    version = DeployedVersion(app="shop", service="cart", stage="test", chart=ChartRef(),
                              image=ImageRef(repository=REPOSITORY, digest=DIGEST))
    vals = chart_values(service, version, database=_database(credentials))
    assert vals.get("database") == ({"secretName": secret} if secret else None)
    assert "database" not in chart_values(service, version)
    main = container(render(helm, vals))
    assert main.get("envFrom") == ([{"secretRef": {"name": secret}}] if secret else None)


def test_helm_deploy_refuses_another_services_database() -> None:
    service = Service(name="cart", app="shop", repository="shop-cart", image=REPOSITORY)
    version = DeployedVersion(app="shop", service="cart", stage="test", chart=ChartRef(),
                              image=ImageRef(repository=REPOSITORY, digest=DIGEST))
    with pytest.raises(ValidationFailed, match="belongs to shop/orders"):
        chart_values(service, version, database=_database("kubernetes:shop-test/orders-db", service="orders"))


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
    (values(image={"repository": REPOSITORY, "digest": DIGEST, "tag": "-rc1"}), r"/image/tag"),
    (values(image={"repository": REPOSITORY, "digest": DIGEST, "tag": "a" * 129}), r"/image/tag"),
    (values(replicas=3), "additional properties 'replicas' not allowed"),
    (values(replicaCount="two"), r"/replicaCount"),
    (values(ingress={"enabled": True}), "ingress.host is required"),
    (values(ingress={"enabled": True, "host": "a.b", "tls": {"clusterIssuer": "le"}}), "ingress.tls.enabled is false"),
], ids=["missing-digest", "tag-as-digest", "uppercase-digest", "tag-in-repository",
        "tag-starting-with-dash", "tag-too-long", "unknown-key",
        "replicas-not-int", "ingress-without-host", "issuer-without-tls"])
def test_bad_values_fail_with_a_readable_chart_error(helm: Helm, vals: dict[str, Any], message: str) -> None:
    with pytest.raises(ChartError, match=message):
        helm.template("cart", CHART, "shop-dev", vals)
