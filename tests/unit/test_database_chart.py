"""charts/database rendered and linted by the real Helm binary (no cluster needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stageflow.adapters.helm import ChartError, Helm, chart_version, helm_binary
from stageflow.errors import TerminalError

CHART = Path(__file__).resolve().parents[2] / "charts" / "database"
ENGINES = {  # engine: (image, port, data directory, env vars from the Secret)
    "postgres": ("postgres:16.4", 5432, "/var/lib/postgresql/data",
                 {"POSTGRES_USER": "username", "POSTGRES_PASSWORD": "password", "POSTGRES_DB": "database"}),
    "mongodb": ("mongo:7.0", 27017, "/data/db",
                {"MONGO_INITDB_ROOT_USERNAME": "username", "MONGO_INITDB_ROOT_PASSWORD": "password",
                 "MONGO_INITDB_DATABASE": "database"}),
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    try:
        binary = helm_binary()
    except TerminalError as exc:
        pytest.skip(f"the helm binary is not built yet (`make setup` runs scripts/build-tools.sh): {exc}")
    return Helm(tmp_path_factory.mktemp("helm") / "kubeconfig", binary=binary)


def values(engine: str = "postgres", **overrides: Any) -> dict[str, Any]:
    return {"engine": engine, "app": "shop", "stage": "test", "auth": {"existingSecret": "orders-db"}, **overrides}


def render(helm: Helm, vals: dict[str, Any]) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(helm.template("orders-db", CHART, "shop-test", vals)) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs) == 2
    return by_kind


def test_chart_metadata() -> None:
    assert chart_version(CHART) == "0.1.0"
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["name"] == "database"


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_lint_passes(helm: Helm, engine: str) -> None:
    helm.lint(CHART, values(engine))


def test_lint_passes_with_the_defaults(helm: Helm) -> None:
    helm.lint(CHART, {})


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_renders_a_statefulset_and_a_service(helm: Helm, engine: str) -> None:
    image, port, data_dir, env_keys = ENGINES[engine]
    manifests = render(helm, values(engine))
    sts, svc = manifests["StatefulSet"], manifests["Service"]
    assert sts["metadata"]["name"] == svc["metadata"]["name"] == "orders-db"
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["image"] == image
    assert main["ports"] == [{"name": engine, "containerPort": port, "protocol": "TCP"}]
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": engine, "port": port, "targetPort": engine, "protocol": "TCP"}]
    assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    # Credentials only by reference to the existing Secret, never as literal values.
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in main["env"] if "valueFrom" in e}
    assert from_secret == {name: {"name": "orders-db", "key": key} for name, key in env_keys.items()}
    assert all("valueFrom" in e or e["name"] == "PGDATA" for e in main["env"])
    assert {m["mountPath"] for m in main["volumeMounts"] if m["name"] == "data"} == {data_dir}
    probes = [main["readinessProbe"]["exec"]["command"], main["livenessProbe"]["exec"]["command"]]
    tool = "pg_isready" if engine == "postgres" else "mongosh"
    assert all(tool in " ".join(command) for command in probes)
    assert main["resources"]["requests"] and main["resources"]["limits"]


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_runs_as_non_root_with_nothing_extra(helm: Helm, engine: str) -> None:
    sts = render(helm, values(engine))["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    assert {k: pod["securityContext"][k] for k in ("runAsNonRoot", "runAsUser", "fsGroup", "seccompProfile")} == {
        "runAsNonRoot": True, "runAsUser": 999, "fsGroup": 999, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    (main,) = pod["containers"]
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_volume_claim_size_and_storage_class(helm: Helm) -> None:
    default = render(helm, values())["StatefulSet"]["spec"]["volumeClaimTemplates"]
    (claim,) = default
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    # The claims carry the selector labels: deprovisioning finds them by these.
    assert claim["metadata"]["labels"]["app.kubernetes.io/instance"] == "orders-db"
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "database"
    (custom,) = render(helm, values(persistence={"size": "5Gi", "storageClassName": "fast"}))["StatefulSet"][
        "spec"]["volumeClaimTemplates"]
    assert (custom["spec"]["resources"]["requests"]["storage"], custom["spec"]["storageClassName"]) == ("5Gi", "fast")


def test_secret_defaults_to_the_release_name(helm: Helm) -> None:
    (main,) = render(helm, {"engine": "mongodb"})["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in main["env"]} == {"orders-db"}


@pytest.mark.parametrize(("overrides", "complaint"), [
    ({"engine": "mysql"}, "/engine"),
    ({"password": "hunter2"}, "additional properties 'password' not allowed"),
    ({"auth": {"existingSecret": "orders-db", "password": "x"}}, "additional properties 'password' not allowed"),
    ({"image": {"postgres": "postgres"}}, "/image/postgres"),
    ({"persistence": {"size": "lots"}}, "/persistence/size"),
])
def test_schema_rejects(helm: Helm, overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ChartError, match=complaint):
        helm.template("orders-db", CHART, "shop-test", {**values(), **overrides})
