"""Step ``helm:bootstrap-core-services``: make ``core-services`` run the platform's catalog.

Each catalog entry (:class:`stageflow.spec.models.CoreService`) is one Helm release in
``core-services``, installed in catalog order (cert-manager's CRDs before anything that uses them).
A release is only upgraded when its chart, chart version or values differ from what is deployed,
so a re-run with an unchanged catalog creates no new Helm revision. Changed releases are
installed with ``--wait`` (Helm waits for their Deployments and StatefulSets to be Ready); every
release's Deployments are checked Ready afterwards, unchanged ones included.

Example::

    result = run(Config(services=spec.platform.core_services, registry_plain_http=True),
                 Helm(kubeconfig), Kube(kubeconfig))
    result.installed, result.upgraded, result.unchanged
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stageflow.adapters.helm import Helm, HelmRelease
from stageflow.adapters.kube import Kube
from stageflow.errors import Problem, TerminalError, ValidationFailed
from stageflow.spec.models import CORE_SERVICES_NAMESPACE, CoreService

__all__ = ["KIND", "Config", "Result", "CoreServiceFailed", "NAMESPACE_LABELS", "run"]

KIND = "helm:bootstrap-core-services"

NAMESPACE_LABELS = {
    "app.kubernetes.io/managed-by": "stageflow",
    # Baseline, not restricted: controllers such as ingress-nginx need capabilities restricted refuses.
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "baseline",
}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    services: list[CoreService]
    registry_plain_http: bool = Field(False, description="reach oci:// chart registries over plain HTTP "
                                                         "(the embedded registry has no TLS)")
    timeout_seconds: int = Field(300, gt=0, description="how long one release may take to become Ready")

    @field_validator("services")
    @classmethod
    def _unique(cls, services: list[CoreService]) -> list[CoreService]:
        names = [s.name for s in services]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"release names must be unique (listed more than once: {', '.join(twice)})")
        return services


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    installed: list[str] = []
    upgraded: list[str] = []
    unchanged: list[str] = []
    revisions: dict[str, int] = Field({}, description="release -> its current Helm revision")


class CoreServiceFailed(TerminalError):
    """A core service could not be installed or upgraded; the message names it and its chart."""


def run(config: Config, helm: Helm, kube: Kube) -> Result:
    if not config.services:
        raise ValidationFailed(Problem("core_services", "the catalog is empty: nothing to bootstrap",
                                       "platform.yaml"), summary="no core services")
    kube.ensure_namespace(CORE_SERVICES_NAMESPACE, NAMESPACE_LABELS)
    outcome: dict[str, list[str]] = {"installed": [], "upgraded": [], "unchanged": []}
    revisions: dict[str, int] = {}
    for service in config.services:
        current = helm.status(service.name, CORE_SERVICES_NAMESPACE)
        if current is not None and _matches(helm, service, current):
            outcome["unchanged"].append(service.name)
            revisions[service.name] = current.revision
        else:
            deployed = _install(helm, service, config)
            outcome["installed" if current is None else "upgraded"].append(service.name)
            revisions[service.name] = deployed.revision
        _wait_ready(kube, service, config.timeout_seconds)
    return Result(**outcome, revisions=revisions)


def _matches(helm: Helm, service: CoreService, current: HelmRelease) -> bool:
    """True when the deployed revision has this chart, this version and exactly these values."""
    # The chart name guards against swapping one chart for another that happens to share a version;
    # the leading "v" is compared loosely because `--version 1.16.2` finds a chart tagged v1.16.2.
    deployed_name = current.chart.removesuffix(f"-{current.chart_version}")
    if deployed_name != service.chart_name or _bare(current.chart_version) != _bare(service.version):
        return False
    return not helm.needs_upgrade(service.name, CORE_SERVICES_NAMESPACE, current.chart_version, service.values,
                                  current=current)


def _install(helm: Helm, service: CoreService, config: Config) -> HelmRelease:
    oci = service.chart.startswith("oci://")
    chart = service.chart if oci else service.chart_name
    try:
        return helm.upgrade_install(service.name, chart, CORE_SERVICES_NAMESPACE, service.values,
                                    create_namespace=False, wait=True, timeout=f"{config.timeout_seconds}s",
                                    version=service.version, plain_http=oci and config.registry_plain_http,
                                    repo=service.repository)
    except TerminalError as exc:
        # Helm names the release only; a person fixing platform.yaml needs the chart and version too.
        source = service.chart if oci else f"{service.chart_name} from {service.repository}"
        raise CoreServiceFailed(f"core service {service.name!r} (chart {source}, version {service.version}) "
                                f"could not be installed: {exc}") from exc


def _wait_ready(kube: Kube, service: CoreService, timeout: int) -> None:
    # Charts label what they create with the release name (app.kubernetes.io/instance); an
    # unchanged release is checked too, since a Deployment may have been broken since the last run.
    selector = f"app.kubernetes.io/instance={service.name}"
    for deployment in kube.list_deployments(CORE_SERVICES_NAMESPACE, selector):
        try:
            kube.wait_for_rollout(CORE_SERVICES_NAMESPACE, deployment.name, timeout=timeout)
        except TerminalError as exc:
            raise CoreServiceFailed(f"core service {service.name!r}: {exc}") from exc


def _bare(version: str) -> str:
    return version.removeprefix("v")
