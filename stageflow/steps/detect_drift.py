"""Step ``drift:detect``: compare the infrastructure repo with the cluster, read-only.

For every (app, stage, service) the repo gives a DeployedVersion it checks, in this order:

    the Helm release exists and is ``deployed``          missing-release / release-status
    its chart version is the repo's                      chart-version
    its stored values are exactly ``chart_values(...)``  values
    the live Deployment exists                           missing-deployment
    the Deployment's container image is repo@digest      image
    the Deployment's replicas are the wanted ones        replicas

The last two read the live object, not Helm's record: ``kubectl scale`` or ``kubectl set image``
leave Helm's stored values untouched, so only the Deployment itself shows them. A release of
the service chart that the repo does not know is reported as ``unmanaged``. The namespace
policies (NetworkPolicies, quota, limits, RBAC) are checked against what ``ensure_app_stages``
would apply: each object must exist and the fields it sets must have the same values.

Nothing here writes: healing is ``drift:heal``'s job.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from kubernetes.client import ApiClient
from pydantic import BaseModel, ConfigDict, field_validator

from stageflow.adapters.helm import Helm, HelmRelease
from stageflow.adapters.kube import Kube, _translated
from stageflow.spec import STAGES, DeployedVersion, PlatformSpec, namespace
from stageflow.spec.names import app_name_problem
from stageflow.steps import ensure_app_stages as stages
from stageflow.steps import helm_deploy

KIND = "drift:detect"

__all__ = ["KIND", "Config", "Drift", "DriftKind", "Result", "run", "service_drifts", "RELEASE_KINDS", "POLICY_KINDS"]

DriftKind = Literal[
    "missing-release", "release-status", "chart-version", "values", "missing-deployment", "image", "replicas",
    "policy-missing", "policy-changed", "unmanaged",
]
# Drift that an upgrade of the service's Helm release undoes, and drift of the namespace policies.
RELEASE_KINDS: frozenset[str] = frozenset(
    {"missing-release", "release-status", "chart-version", "values", "missing-deployment", "image", "replicas"})
POLICY_KINDS: frozenset[str] = frozenset({"policy-missing", "policy-changed"})

# Long values (a whole dict, a digest list) would make the report unreadable; the full truth is in the cluster.
_SHOWN = 160
_UNSET = object()


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # One app, or every app in the repo.
    app: str | None = None

    @field_validator("app")
    @classmethod
    def _app_name(cls, value: str | None) -> str | None:
        if value is not None and (problem := app_name_problem(value)) is not None:
            raise ValueError(problem)
        return value


class Drift(BaseModel):
    """One difference between the repo (``expected``) and the cluster (``actual``)."""

    model_config = ConfigDict(frozen=True)
    app: str
    stage: str
    # The service (Helm release) it concerns; None for a namespace policy.
    service: str | None
    kind: DriftKind
    expected: str
    actual: str
    # Which object, for policy drift ("NetworkPolicy/default-deny"); empty otherwise.
    object: str = ""

    def describe(self) -> str:
        what = self.service or self.object or "namespace"
        return f"{namespace(self.app, self.stage)}/{what}: {self.kind}: expected {self.expected}, found {self.actual}"


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    drifts: list[Drift]
    # How many things were compared: one per deployed service, plus one per namespace policy object.
    checked: int

    @property
    def clean(self) -> bool:
        return not self.drifts


def run(config: Config, spec: PlatformSpec, helm: Helm, kube: Kube, kube_api: ApiClient | None) -> Result:
    """Every drift between ``spec`` and the cluster, for ``config.app`` or every app.

    ``kube_api`` (``ensure_app_stages.connect``) reads the namespace policies; None leaves them out.
    """
    apps = [spec.app(config.app).name] if config.app is not None else sorted(spec.apps)
    drifts: list[Drift] = []
    checked = 0
    for app in apps:
        for stage in STAGES:
            exists = kube.namespace_exists(namespace(app, stage))
            if not exists and not _versions(spec, app, stage):
                continue  # a stage nothing was ever deployed to: no namespace, nothing to compare
            for version in _versions(spec, app, stage):
                checked += 1
                drifts += service_drifts(spec, version, helm, kube)
            drifts += _unmanaged(spec, app, stage, helm)
            if kube_api is not None:  # a missing namespace then shows as its objects all missing
                found, compared = _policy_drifts(app, stage, kube_api)
                checked += compared
                drifts += found
    return Result(drifts=drifts, checked=checked)


def _versions(spec: PlatformSpec, app: str, stage: str) -> list[DeployedVersion]:
    return [v for (a, _s, st), v in sorted(spec.versions.items()) if a == app and st == stage]


def service_drifts(spec: PlatformSpec, version: DeployedVersion, helm: Helm, kube: Kube) -> list[Drift]:
    """What differs for one service: the release first; the live Deployment only if the release is there."""
    app, stage, name = version.app, version.stage, version.service
    ns = namespace(app, stage)

    def drift(kind: DriftKind, expected: object, actual: object, obj: str = "") -> Drift:
        return Drift(app=app, stage=stage, service=name, kind=kind, expected=_short(expected), actual=_short(actual),
                     object=obj)

    values = helm_deploy.chart_values(spec.service(app, name), version, spec.database(app, name, stage))
    release = helm.status(name, ns)
    if release is None:
        return [drift("missing-release", f"release {name} with chart {version.chart.version}", "no release")]
    found: list[Drift] = []
    if release.status != "deployed":
        found.append(drift("release-status", "deployed", release.status))
    if release.chart_version != version.chart.version:
        found.append(drift("chart-version", version.chart.version, release.chart_version or release.chart))
    found += _values_drift(helm, release, values, drift)

    live = kube.deployment_status(ns, name)
    if live is None:
        return [*found, drift("missing-deployment", f"Deployment {name}", "no Deployment")]
    wanted_image = f"{version.image.repository}@{version.image.digest}"
    if live.images != (wanted_image,):
        found.append(drift("image", wanted_image, ", ".join(live.images) or "no container"))
    wanted_replicas = values.get("replicaCount")
    if wanted_replicas is not None and live.desired != wanted_replicas:
        found.append(drift("replicas", wanted_replicas, live.desired))
    return found


def _values_drift(helm: Helm, release: HelmRelease, values: dict[str, Any], drift: Any) -> list[Drift]:
    # The same comparison helm_deploy makes before it upgrades: the values as Helm stores them (JSON).
    stored = helm.get_values(release.name, release.namespace)
    wanted = json.loads(json.dumps(values))
    if stored == wanted:
        return []
    # Name only the keys that differ: the report says "replicaCount=1", not two whole value trees.
    expected, actual = _differences(wanted, stored)
    return [drift("values", expected, actual)]


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """``{"image": {"digest": "x"}}`` -> ``{"image.digest": "x"}``: lets a report name the exact keys."""
    if not isinstance(values, dict) or not values:
        return {prefix: values} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _pairs(flat: dict[str, Any], paths: list[str]) -> str:
    # default=str: quantities are compared as Decimals and shown as such.
    return ", ".join(f"{p}={json.dumps(flat[p], default=str)}" for p in paths if p in flat)


def _unmanaged(spec: PlatformSpec, app: str, stage: str, helm: Helm) -> list[Drift]:
    """Releases of the service chart in the stage that the repo has no DeployedVersion for.

    Other charts (a service's test database) are not the repo's services and are left out.
    """
    chart = spec.platform.chart.name
    known = {v.service for v in _versions(spec, app, stage)}
    return [Drift(app=app, stage=stage, service=r.name, kind="unmanaged", expected="not deployed",
                  actual=f"release {r.name} ({r.chart}, revision {r.revision})")
            for r in sorted(helm.list_releases(namespace(app, stage)), key=lambda r: r.name)
            if r.chart.removesuffix(f"-{r.chart_version}") == chart and r.name not in known]


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _policy_drifts(app: str, stage: str, kube_api: ApiClient) -> tuple[list[Drift], int]:
    """Each object ensure_app_stages applies to the stage: missing, or a field it owns changed.

    "Changed" is decided by ensure_app_stages' own rules (the labels it sets, the fields it owns,
    quantities and server-omitted empties normalised), so whatever this reports, applying the
    stage again repairs, and whatever applying leaves alone, this does not report.
    """
    manifests = stages.desired_objects(app, stage, stages.Config(app=app).limits_for(stage))
    drifts: list[Drift] = []
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        label = f"{kind}/{name}"
        current = _read_object(kube_api, manifest)

        def drift(kind_: DriftKind, expected: object, actual: object, obj: str = label) -> Drift:
            return Drift(app=app, stage=stage, service=None, kind=kind_, expected=_short(expected),
                         actual=_short(actual), object=obj)

        if current is None:
            drifts.append(drift("policy-missing", label, "missing"))
            continue
        have_labels = (current.get("metadata") or {}).get("labels") or {}
        wanted_labels = manifest["metadata"].get("labels") or {}
        changed = {k: v for k, v in wanted_labels.items() if have_labels.get(k) != v}
        if changed:
            drifts.append(drift("policy-changed", changed, {k: have_labels.get(k) for k in changed},
                                f"{label} labels"))
        for field in stages._KINDS[kind][2]:  # noqa: SLF001 - the fields ensure_app_stages owns
            wanted, have = stages._normal(manifest.get(field)), stages._normal(current.get(field))  # noqa: SLF001
            if wanted != have:
                drifts.append(drift("policy-changed", *_differences({field: wanted}, {field: have}),
                                    f"{label} {field}"))
    return drifts, len(manifests)


def _differences(wanted: Any, have: Any) -> tuple[str, str]:
    """Only the keys that differ, as ``a.b=value`` lists: (expected, actual)."""
    flat_wanted, flat_have = _flatten(wanted), _flatten(have)
    paths = sorted(p for p in flat_wanted.keys() | flat_have.keys()
                   if flat_wanted.get(p, _UNSET) != flat_have.get(p, _UNSET))
    return _pairs(flat_wanted, paths) or "(unset)", _pairs(flat_have, paths) or "(unset)"


def _read_object(kube_api: ApiClient, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The live object as plain data (what the API server serves), or None when it does not exist."""
    api_class, suffix, _owned = stages._KINDS[manifest["kind"]]  # noqa: SLF001 - one mapping, not two
    meta = manifest["metadata"]
    ops = stages._Ops(api_class(kube_api), suffix, meta["name"], meta.get("namespace"))  # noqa: SLF001
    with _translated(f"{manifest['kind']}/{meta.get('namespace', '')}/{meta['name']}"):
        found = ops.read()
    return None if found is None else kube_api.sanitize_for_serialization(found)
