"""The core-services catalog in platform.yaml: what it accepts and what it refuses, by rule."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stageflow.errors import ValidationFailed
from stageflow.spec import Platform, parse_file, to_yaml
from stageflow.spec.models import CORE_SERVICES_NAMESPACE, CoreService

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "core-services.yaml"
STANDINS = Path(__file__).resolve().parents[2] / "stageflow" / "local" / "core-charts"


def platform_yaml(services: list[dict]) -> str:
    return yaml.safe_dump({"apiVersion": "stageflow.dev/v1", "kind": "Platform", "registry": "127.0.0.1:5000",
                           "core_services": services}, sort_keys=False)


def problems(services: list[dict]) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_file("platform.yaml", platform_yaml(services))
    return [str(p) for p in caught.value.problems]


OCI = {"name": "loki", "chart": "oci://127.0.0.1:5000/charts/loki", "version": "6.18.0"}


def test_example_catalog_is_a_valid_platform_file() -> None:
    platform = parse_file("platform.yaml", EXAMPLE.read_text())
    assert isinstance(platform, Platform)
    names = [s.name for s in platform.core_services]
    assert names == ["ingress-nginx", "cert-manager", "external-dns", "kube-prometheus-stack", "loki",
                     "traffic-manager", "prefect-server", "prefect-worker"]
    assert all(s.namespace == CORE_SERVICES_NAMESPACE for s in platform.core_services)
    traffic = next(s for s in platform.core_services if s.name == "traffic-manager")
    assert traffic.values["namespaceSelector"] == {"matchLabels": {"stageflow.dev/stage": "test"}}


def test_every_example_chart_has_a_stand_in_of_the_same_name_and_version() -> None:
    # The integration test swaps each chart for its stand-in; a drifted version would test nothing real.
    for service in parse_file("platform.yaml", EXAMPLE.read_text()).core_services:
        meta = yaml.safe_load((STANDINS / service.chart_name / "Chart.yaml").read_text())
        assert (meta["name"], meta["version"]) == (service.chart_name, service.version)


def test_platform_without_catalog_still_reads() -> None:
    platform = parse_file("platform.yaml", "apiVersion: stageflow.dev/v1\nkind: Platform\nregistry: 127.0.0.1:5000\n")
    assert platform.core_services == []


def test_catalog_round_trips_through_yaml() -> None:
    platform = parse_file("platform.yaml", platform_yaml([{**OCI, "values": {"replicas": 2, "a": {"b": "c"}}}]))
    again = parse_file("platform.yaml", to_yaml(platform))
    assert again == platform
    assert again.core_services[0].chart_name == "loki"


def test_unknown_key_is_refused() -> None:
    found = problems([{**OCI, "namespace": "kube-system"}])
    assert any("core_services[0].namespace: is not a known field" in p for p in found), found


def test_duplicate_release_names_are_refused() -> None:
    found = problems([OCI, {**OCI, "chart": "oci://127.0.0.1:5000/charts/other"}])
    assert found == ["platform.yaml: core_services: release names must be unique (listed more than once: loki)"]


@pytest.mark.parametrize(("entry", "rule"), [
    ({**OCI, "repository": "https://grafana.github.io/helm-charts"}, "repository must be left out"),
    ({"name": "loki", "chart": "loki", "version": "6.18.0"}, "needs a repository URL"),
    ({"name": "loki", "chart": "loki", "repository": "grafana", "version": "6.18.0"}, "must be an http(s) URL"),
    ({**OCI, "version": "latest"}, "must be a chart version"),
    ({**OCI, "version": 6.18}, "must be a string"),
    ({**OCI, "name": "Loki_1"}, "core_services[0].name"),
    ({**OCI, "chart": "oci://127.0.0.1:5000/charts/Loki"}, "must end in a chart name"),
    ({**OCI, "chart": " "}, "must not be empty"),
    ({"name": "loki", "chart": "oci://x/loki"}, "core_services[0].version: is required"),
])
def test_bad_entries_name_the_rule(entry: dict, rule: str) -> None:
    found = problems([entry])
    assert any(rule in p for p in found), found


def test_repo_slash_chart_form_and_v_versions() -> None:
    service = CoreService(name="cert-manager", chart="jetstack/cert-manager", repository="https://charts.jetstack.io",
                          version="v1.16.2")
    assert service.chart_name == "cert-manager"
