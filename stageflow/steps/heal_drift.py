"""Step ``drift:heal``: make the cluster match the infrastructure repo again, for the drift
``drift:detect`` found.

Release drift (a missing or failed release, another chart version or other values) and live
drift of the Deployment (replicas, image) are healed the same way: an upgrade of the service's
Helm release with the repo's chart and values. ``helm_deploy`` skips the upgrade when Helm's
stored values already match, which is exactly the case after ``kubectl scale`` or
``kubectl set image``, so the upgrade is then forced. Helm 3 patches with a three-way merge of
the previous manifest, the new one and the live object: every field the chart sets (replicas,
image, ...) is put back and a deleted Deployment is created again, while fields the chart never
sets are left as they are. No ``--force`` (which replaces objects) is needed.

Policy drift is healed by applying the namespace's objects again (``ensure_app_stages``).
``unmanaged`` releases are never removed here: uninstalling something the repo does not know
is a person's decision; they stay in the report.

Each target is checked again right before it is healed, so a stale report (or a second run)
changes nothing that already matches.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kubernetes.client import ApiClient
from pydantic import BaseModel, ConfigDict

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.spec import PlatformSpec, namespace
from stageflow.steps import ensure_app_stages as stages
from stageflow.steps import helm_deploy
from stageflow.steps.detect_drift import POLICY_KINDS, RELEASE_KINDS, Drift, service_drifts

KIND = "drift:heal"

__all__ = ["KIND", "Config", "Healed", "Skipped", "Result", "run"]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    drifts: list[Drift]
    # The service chart every release is upgraded with.
    chart: Path


class Healed(BaseModel):
    """One target made to match again, and how."""

    model_config = ConfigDict(frozen=True)
    app: str
    stage: str
    service: str | None
    action: str
    drifts: list[Drift]
    # The release's revision after a Helm upgrade (None for namespace policies).
    revision: int | None = None


class Skipped(BaseModel):
    """Drift left alone, and why: an unmanaged release, or a service gone from the repo since."""

    model_config = ConfigDict(frozen=True)
    drift: Drift
    reason: str


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    healed: list[Healed]
    skipped: list[Skipped]

    @property
    def services(self) -> list[tuple[str, str, str]]:
        """(app, stage, service) of every release that was upgraded."""
        return [(h.app, h.stage, h.service) for h in self.healed if h.service is not None]


def run(config: Config, spec: PlatformSpec, helm: Helm, kube: Kube, kube_api: ApiClient | None = None) -> Result:
    healed: list[Healed] = []
    skipped: list[Skipped] = []
    for (app, stage, service), drifts in _grouped(d for d in config.drifts if d.kind in RELEASE_KINDS).items():
        outcome = _heal_release(config, spec, helm, kube, app, stage, service, drifts)
        if isinstance(outcome, str):
            skipped += [Skipped(drift=d, reason=outcome) for d in drifts]
        elif outcome is not None:
            healed.append(outcome)
    policy = [d for d in config.drifts if d.kind in POLICY_KINDS]
    if policy:
        healed_policies, not_healed = _heal_policies(policy, kube_api)
        healed += healed_policies
        skipped += not_healed
    skipped += [Skipped(drift=d, reason="not in the infrastructure repo: uninstall it or add it to the repo")
                for d in config.drifts if d.kind == "unmanaged"]
    return Result(healed=healed, skipped=skipped)


def _grouped(drifts: Iterable[Drift]) -> dict[tuple[str, str, str], list[Drift]]:
    out: dict[tuple[str, str, str], list[Drift]] = {}
    for d in drifts:
        out.setdefault((d.app, d.stage, d.service or ""), []).append(d)
    return out


def _heal_release(config: Config, spec: PlatformSpec, helm: Helm, kube: Kube, app: str, stage: str, service: str,
                  drifts: list[Drift]) -> Healed | str | None:
    """Upgrade one release so that it and its Deployment match the repo.

    Returns what was done, a reason it was skipped, or None when it already matches again.
    """
    version = spec.version(app, service, stage)
    if version is None or (app, service) not in spec.services:
        return "no longer in the infrastructure repo"
    # Adopt before acting: what was reported may have been healed since (another run, a sync-stage).
    current = service_drifts(spec, version, helm, kube)
    if not current:
        return None
    deploy = helm_deploy.Config(service=spec.service(app, service), version=version, chart=config.chart,
                                database=spec.database(app, service, stage))
    # helm_deploy upgrades when the release, its chart version or its values differ (and first
    # recovers a release a dead run left pending-*).
    deployed = helm_deploy.run(deploy, helm, kube)
    revision, action = deployed.revision, "helm upgrade to the repo's chart and values"
    if not deployed.changed:
        # Helm's record already matches: the drift is in the live objects. Upgrading anyway makes
        # Helm's three-way merge put back every field the chart sets.
        values = helm_deploy.chart_values(deploy.service, version, deploy.database)
        revision = helm.upgrade_install(service, config.chart, namespace(app, stage), values,
                                        create_namespace=False).revision
        action = "helm upgrade with unchanged values (three-way merge restores the live objects)"
    return Healed(app=app, stage=stage, service=service, action=f"{action}: revision {revision}", drifts=current,
                  revision=revision)


def _heal_policies(drifts: list[Drift], kube_api: ApiClient | None) -> tuple[list[Healed], list[Skipped]]:
    """Apply each drifted stage's namespace objects again; ensure_app_stages only touches what differs."""
    if kube_api is None:
        return [], [Skipped(drift=d, reason="no Kubernetes API client given for namespace policies") for d in drifts]
    healed: list[Healed] = []
    for (app, stage, _), found in _grouped(drifts).items():
        applied = stages.run(stages.Config(app=app, stages=(stage,)), kube_api)
        action = (f"applied the namespace objects again: {len(applied.created)} created, "
                  f"{len(applied.updated)} updated ({', '.join(applied.created + applied.updated) or 'none'})")
        healed.append(Healed(app=app, stage=stage, service=None, action=action, drifts=found))
    return healed, []
