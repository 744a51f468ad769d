"""Step ``helm:deploy``: make the stage's Helm release match a DeployedVersion.

``helm upgrade --install`` of the generic service chart into ``<app>-<stage>`` with the image
pinned by digest. The release is only upgraded when the chart version or the values differ from
what is deployed, so a re-run creates no new Helm revision.

The step runs under the stage lock, so a release left ``pending-*`` can only be the remains of a
run that died mid-operation: it is rolled back to its last good revision (or uninstalled if it
never had one) before the upgrade, instead of failing with "another operation is in progress"
forever.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from stageflow.adapters.helm import Helm, HelmRelease
from stageflow.adapters.kube import Kube
from stageflow.spec import DeployedVersion, Service, namespace

KIND = "helm:deploy"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    service: Service
    version: DeployedVersion
    chart: Path


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    release: str
    namespace: str
    revision: int
    previous_revision: int | None
    changed: bool


def chart_values(service: Service, version: DeployedVersion) -> dict[str, Any]:
    """The values the service chart gets: what the spec says, then the stage's own overrides."""
    base: dict[str, Any] = {
        "image": {"repository": version.image.repository, "digest": version.image.digest},
        "replicaCount": service.replicas,
        "port": service.port,
        "app": version.app,
        "stage": version.stage,
    }
    return _merge(base, version.values)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def namespace_labels(app: str, stage: str) -> dict[str, str]:
    return {"stageflow.dev/app": app, "stageflow.dev/stage": stage, "app.kubernetes.io/managed-by": "stageflow"}


def render_check(helm: Helm, chart: Path) -> Callable[[Service, DeployedVersion], None]:
    """A check that renders the chart with a version's values (no cluster needed): chart and
    schema errors surface as ChartError before anything is written or deployed."""
    def check(service: Service, version: DeployedVersion) -> None:
        helm.template(version.service, chart, namespace(version.app, version.stage), chart_values(service, version))

    return check


def run(config: Config, helm: Helm, kube: Kube) -> Result:
    v = config.version
    ns = namespace(v.app, v.stage)
    release = v.service
    values = chart_values(config.service, v)
    kube.ensure_namespace(ns, namespace_labels(v.app, v.stage))
    current = helm.status(release, ns)
    if current is not None and current.status.startswith("pending-"):
        current = _recover_interrupted(helm, release, ns, current.revision)
    if current is not None and not helm.needs_upgrade(release, ns, v.chart.version, values, current=current):
        return Result(release=release, namespace=ns, revision=current.revision,
                      previous_revision=current.revision, changed=False)
    deployed = helm.upgrade_install(release, config.chart, ns, values, create_namespace=False)
    return Result(release=release, namespace=ns, revision=deployed.revision,
                  previous_revision=current.revision if current else None, changed=True)


def _recover_interrupted(helm: Helm, release: str, ns: str, stuck: int) -> HelmRelease | None:
    """Undo an operation a dead run left pending; returns the release as it is afterwards."""
    good = [r.revision for r in helm.history(release, ns)
            if r.revision < stuck and r.status in ("deployed", "superseded")]
    if not good:
        helm.uninstall(release, ns)
        return None
    return helm.rollback(release, ns, max(good))
