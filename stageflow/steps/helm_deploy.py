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
from stageflow.errors import Problem, ValidationFailed
from stageflow.spec import Database, DeployedVersion, Service, namespace

KIND = "helm:deploy"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    service: Service
    version: DeployedVersion
    chart: Path
    # The service's database at this stage, if it has one: its Secret reaches the pods via envFrom.
    database: Database | None = None


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    release: str
    namespace: str
    revision: int
    previous_revision: int | None
    changed: bool


def chart_values(service: Service, version: DeployedVersion, database: Database | None = None) -> dict[str, Any]:
    """The values the service chart gets: what the spec says, then the stage's own overrides.

    A ``database`` adds ``database.secretName``: its Secret in this stage's namespace, or for a
    managed prod database the Secret provision-database syncs from the cloud secret manager.
    """
    base: dict[str, Any] = {
        "image": {"repository": version.image.repository, "digest": version.image.digest},
        "replicaCount": service.replicas,
        "port": service.port,
        "app": version.app,
        "stage": version.stage,
    }
    if version.image.tag is not None:
        # Informational only (the pods' app.kubernetes.io/version label); the chart still pulls by digest.
        base["image"]["tag"] = version.image.tag
    if database is not None and (database.app, database.service, database.stage) != (
            version.app, version.service, version.stage):
        # Another service's (or stage's) credentials must never reach these pods.
        raise ValidationFailed(Problem("database", f"belongs to {database.app}/{database.service} at "
                                                   f"{database.stage}, not {version.app}/{version.service} at "
                                                   f"{version.stage}"))
    secret = _stage_secret(database, namespace(version.app, version.stage))
    if secret is not None:
        base["database"] = {"secretName": secret}
    return _merge(base, version.values)


def synced_secret_name(service: str) -> str:
    """The Secret provision-database keeps in ``<app>-prod`` with a managed database's credentials,
    copied from the cloud secret manager."""
    return f"{service}-db"


def _stage_secret(database: Database | None, ns: str) -> str | None:
    """The Secret the pods get: ``kubernetes:<ns>/<secret>`` for this very namespace, or for a
    managed (Terraform) database the Secret synced from its secret manager."""
    if database is None:
        return None
    if database.provider == "terraform":
        return synced_secret_name(database.service)
    prefix = f"kubernetes:{ns}/"
    if not database.credentials.startswith(prefix):
        return None
    secret = database.credentials.removeprefix(prefix)
    return secret if secret and "/" not in secret else None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def namespace_labels(app: str, stage: str) -> dict[str, str]:
    return {"stageflow.dev/app": app, "stageflow.dev/stage": stage, "app.kubernetes.io/managed-by": "stageflow"}


def render_check(helm: Helm, chart: Path) -> Callable[..., None]:
    """A check that renders the chart with a version's values (no cluster needed): chart and
    schema errors surface as ChartError before anything is written or deployed.

    The check is ``check(service, version, database=None)``; the database is optional so callers
    that know of none keep calling it with two arguments."""
    def check(service: Service, version: DeployedVersion, database: Database | None = None) -> None:
        helm.template(version.service, chart, namespace(version.app, version.stage),
                      chart_values(service, version, database))

    return check


def run(config: Config, helm: Helm, kube: Kube) -> Result:
    v = config.version
    ns = namespace(v.app, v.stage)
    release = v.service
    values = chart_values(config.service, v, config.database)
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
