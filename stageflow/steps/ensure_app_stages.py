"""Step ``kube:ensure-app-stages``: the hardened namespaces ``<app>-test`` and ``<app>-prod``.

For each stage the namespace gets what makes it a stage rather than a bare namespace:

- labels: the app and stage, ``managed-by: stageflow``, and Pod Security Admission, which
  *enforces* ``baseline`` in test (the in-cluster test databases run official images as root)
  and ``restricted`` in prod, and warns and audits ``restricted`` in both;
- a ResourceQuota ``stageflow-quota`` and a LimitRange ``stageflow-limits`` whose container
  defaults make every pod countable by the quota;
- NetworkPolicies: prod denies everything, then allows DNS, the ingress controller in
  ``core-services`` and traffic between the namespace's own pods; test allows traffic within the
  namespace, the ingress controller and DNS;
- RBAC: ``<app>-developers`` may change workloads, exec and port-forward in test (what
  Telepresence intercepts need) and only read in prod (never Secrets); the ServiceAccount
  ``stageflow-deployer`` gets the least rights the flows need to deploy there.

Re-running changes nothing: an object is created when missing and replaced only when a field we
own (labels we set, spec / rules / subjects) differs from what the server holds. Fields the server
fills in (defaults, status, other people's labels) are not compared, so a re-run keeps every
resourceVersion. The Kubernetes client's errors are translated like :mod:`stageflow.adapters.kube`.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.utils import parse_quantity
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stageflow.adapters.kube import _translated
from stageflow.errors import RetryableError, TerminalError
from stageflow.spec import STAGES, Stage, namespace
from stageflow.spec.names import app_name_problem
from stageflow.steps.helm_deploy import namespace_labels

__all__ = ["KIND", "Config", "StageLimits", "Result", "connect", "desired_objects", "run", "DEVELOPERS", "DEPLOYER",
           "QUOTA", "LIMITS", "INGRESS_NAMESPACE", "INGRESS_SELECTOR"]

KIND = "kube:ensure-app-stages"
QUOTA, LIMITS = "stageflow-quota", "stageflow-limits"
DEVELOPERS, DEPLOYER = "stageflow-developers", "stageflow-deployer"
INGRESS_NAMESPACE = "core-services"
INGRESS_SELECTOR = {"app.kubernetes.io/name": "ingress-nginx"}
_PSA_ENFORCE: dict[str, str] = {"test": "baseline", "prod": "restricted"}
_REQUEST_TIMEOUT = 10.0


class StageLimits(BaseModel):
    """What one stage may use in total (ResourceQuota) and what a container gets when it says nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    requests_cpu: str = "4"
    requests_memory: str = "8Gi"
    limits_cpu: str = "8"
    limits_memory: str = "16Gi"
    pods: int = Field(50, ge=1)
    default_request_cpu: str = "50m"
    default_request_memory: str = "64Mi"
    default_limit_cpu: str = "500m"
    default_limit_memory: str = "256Mi"

    @field_validator("requests_cpu", "requests_memory", "limits_cpu", "limits_memory", "default_request_cpu",
                     "default_request_memory", "default_limit_cpu", "default_limit_memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        try:
            parse_quantity(value)
        except ValueError as exc:
            raise ValueError(f"not a Kubernetes quantity: {value!r}") from exc
        return value


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: str
    stages: tuple[Stage, ...] = STAGES
    limits: dict[Stage, StageLimits] = Field(default_factory=lambda: {s: StageLimits() for s in STAGES})

    @field_validator("app")
    @classmethod
    def _app_name(cls, value: str) -> str:
        if (problem := app_name_problem(value)) is not None:
            raise ValueError(problem)
        return value

    def limits_for(self, stage: str) -> StageLimits:
        return self.limits.get(stage, StageLimits())  # type: ignore[call-overload]


class Result(BaseModel):
    """Every object as ``Kind/namespace/name`` (``Namespace/name`` for namespaces)."""

    model_config = ConfigDict(frozen=True)
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []


# -- the manifests ---------------------------------------------------------------------------

def desired_objects(app: str, stage: str, limits: StageLimits | None = None) -> list[dict[str, Any]]:
    """The manifests of one app stage, namespace first; pure (no cluster needed)."""
    limits = limits or StageLimits()
    ns = namespace(app, stage)
    labels = namespace_labels(app, stage)
    enforce = _PSA_ENFORCE[stage]
    psa = {"pod-security.kubernetes.io/enforce": enforce, "pod-security.kubernetes.io/enforce-version": "latest",
           "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "latest",
           "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "latest"}

    def obj(api_version: str, kind: str, name: str, **body: Any) -> dict[str, Any]:
        return {"apiVersion": api_version, "kind": kind,
                "metadata": {"name": name, "namespace": ns, "labels": dict(labels)}, **body}

    def policy(name: str, types: list[str], **rules: Any) -> dict[str, Any]:
        return obj("networking.k8s.io/v1", "NetworkPolicy", name,
                   spec={"podSelector": {}, "policyTypes": types, **rules})

    same_namespace = {"ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"podSelector": {}}]}]}
    policies = [
        policy("allow-dns", ["Egress"], egress=[{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]),
        policy("allow-ingress-controller", ["Ingress"], ingress=[{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_NAMESPACE}},
                      "podSelector": {"matchLabels": dict(INGRESS_SELECTOR)}}]}]),
    ]
    if stage == "prod":
        # Deny first, then allow exactly DNS, the ingress controller and the app's own pods.
        policies = [policy("default-deny", ["Ingress", "Egress"]), *policies,
                    policy("allow-same-app", ["Ingress", "Egress"], **same_namespace)]
    else:
        # Selecting every pod for both directions already isolates them; within the namespace stays open.
        policies = [policy("allow-same-namespace", ["Ingress", "Egress"], **same_namespace), *policies]

    def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return obj("rbac.authorization.k8s.io/v1", "Role", name, rules=rules)

    def binding(name: str, subject: dict[str, Any]) -> dict[str, Any]:
        return obj("rbac.authorization.k8s.io/v1", "RoleBinding", name, subjects=[subject],
                   roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name})

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {**labels, **psa}}},
        obj("v1", "ResourceQuota", QUOTA, spec={"hard": {
            "requests.cpu": limits.requests_cpu, "requests.memory": limits.requests_memory,
            "limits.cpu": limits.limits_cpu, "limits.memory": limits.limits_memory, "pods": str(limits.pods)}}),
        obj("v1", "LimitRange", LIMITS, spec={"limits": [{
            "type": "Container",
            "defaultRequest": {"cpu": limits.default_request_cpu, "memory": limits.default_request_memory},
            "default": {"cpu": limits.default_limit_cpu, "memory": limits.default_limit_memory}}]}),
        *policies,
        role(DEVELOPERS, _developer_rules(stage)),
        binding(DEVELOPERS, {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{app}-developers"}),
        obj("v1", "ServiceAccount", DEPLOYER),
        role(DEPLOYER, _deployer_rules()),
        binding(DEPLOYER, {"kind": "ServiceAccount", "name": DEPLOYER, "namespace": ns}),
    ]


_READ = ["get", "list", "watch"]
_WRITE = [*_READ, "create", "update", "patch", "delete"]


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def _developer_rules(stage: str) -> list[dict[str, Any]]:
    if stage == "prod":
        # Look, never touch; Secrets are left out entirely (prod credentials stay with the deployer).
        return [
            _rule("", ["pods", "pods/log", "services", "endpoints", "configmaps", "events", "persistentvolumeclaims",
                       "serviceaccounts", "resourcequotas", "limitranges"], _READ),
            _rule("apps", ["deployments", "replicasets", "statefulsets"], _READ),
            _rule("batch", ["jobs", "cronjobs"], _READ),
            _rule("networking.k8s.io", ["ingresses", "networkpolicies"], _READ),
        ]
    # Telepresence's intercept patches the workload (traffic-agent), keeps its config in a ConfigMap
    # and reaches the pod through port-forward and exec.
    return [
        _rule("", ["pods", "services", "configmaps"], _WRITE),
        _rule("", ["pods/exec", "pods/portforward", "pods/attach"], ["get", "create"]),
        _rule("", ["pods/log", "endpoints", "events", "persistentvolumeclaims", "serviceaccounts",
                   "resourcequotas", "limitranges"], _READ),
        _rule("apps", ["deployments", "deployments/scale", "replicasets", "statefulsets", "statefulsets/scale"],
              _WRITE),
        _rule("batch", ["jobs", "cronjobs"], _WRITE),
        _rule("networking.k8s.io", ["ingresses"], _WRITE),
        _rule("networking.k8s.io", ["networkpolicies"], _READ),
    ]


def _deployer_rules() -> list[dict[str, Any]]:
    # What helm:deploy, verify-rollout and the database flows touch in the stage, nothing more.
    # Secrets: the service's database credentials and Helm's own release records.
    return [
        _rule("apps", ["deployments", "statefulsets"], _WRITE),
        _rule("apps", ["replicasets"], _READ),
        _rule("", ["services", "serviceaccounts", "secrets", "configmaps", "persistentvolumeclaims"], _WRITE),
        _rule("", ["pods"], _READ),
        _rule("networking.k8s.io", ["ingresses"], _WRITE),
    ]


# -- applying them ---------------------------------------------------------------------------

@contextmanager
def connect(kubeconfig: Path) -> Iterator[k8s.ApiClient]:
    """An ApiClient for ``kubeconfig``, closed afterwards; an unreadable kubeconfig is terminal."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration,
                                    persist_config=False)
    except (ConfigException, OSError, yaml.YAMLError, TypeError, ValueError) as exc:
        raise TerminalError(f"cannot load kubeconfig {kubeconfig}: {type(exc).__name__}") from exc
    if not configuration.verify_ssl:
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    api = k8s.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()


def run(config: Config, kube_api: k8s.ApiClient) -> Result:
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    outcome = {"created": created, "updated": updated, "unchanged": unchanged}
    for stage in config.stages:
        for manifest in desired_objects(config.app, stage, config.limits_for(stage)):
            outcome[_apply(kube_api, manifest)].append(_describe(manifest))
    return Result(created=created, updated=updated, unchanged=unchanged)


# kind -> (API class, the client's method suffix, the fields we own besides our labels)
_KINDS: dict[str, tuple[type, str, tuple[str, ...]]] = {
    "Namespace": (k8s.CoreV1Api, "namespace", ()),
    "ResourceQuota": (k8s.CoreV1Api, "namespaced_resource_quota", ("spec",)),
    "LimitRange": (k8s.CoreV1Api, "namespaced_limit_range", ("spec",)),
    "ServiceAccount": (k8s.CoreV1Api, "namespaced_service_account", ()),
    "NetworkPolicy": (k8s.NetworkingV1Api, "namespaced_network_policy", ("spec",)),
    "Role": (k8s.RbacAuthorizationV1Api, "namespaced_role", ("rules",)),
    "RoleBinding": (k8s.RbacAuthorizationV1Api, "namespaced_role_binding", ("subjects", "roleRef")),
}


def _describe(manifest: dict[str, Any]) -> str:
    meta = manifest["metadata"]
    where = f"{meta['namespace']}/" if "namespace" in meta else ""
    return f"{manifest['kind']}/{where}{meta['name']}"


def _apply(api: k8s.ApiClient, manifest: dict[str, Any]) -> Literal["created", "updated", "unchanged"]:
    """Create the object, or bring the fields we own back to ``manifest``; say which happened."""
    kind = manifest["kind"]
    api_class, suffix, owned = _KINDS[kind]
    ops = _Ops(api_class(api), suffix, manifest["metadata"]["name"], manifest["metadata"].get("namespace"))
    with _translated(_describe(manifest)):
        current = ops.read()
        if current is None:
            try:
                ops.create(manifest)
                return "created"
            except ApiException as exc:
                if exc.status != 409:
                    raise
            current = ops.read()  # created by a concurrent run between our read and create: adopt it
        current_dict = api.sanitize_for_serialization(current)
        if kind == "Namespace" and (current_dict.get("status") or {}).get("phase") == "Terminating":
            raise RetryableError(f"namespace {ops.name} is being deleted; it can be set up again once it is gone")
        have_labels = (current_dict.get("metadata") or {}).get("labels") or {}
        wanted_labels = manifest["metadata"].get("labels") or {}
        labels_differ = any(have_labels.get(k) != v for k, v in wanted_labels.items())
        fields_differ = [f for f in owned if _normal(manifest.get(f)) != _normal(current_dict.get(f))]
        if not labels_differ and not fields_differ:
            return "unchanged"
        if not owned:
            # Namespaces and ServiceAccounts: only our labels are ours; the server owns the rest.
            ops.patch({"metadata": {"labels": wanted_labels}})
        elif "roleRef" in fields_differ:
            # A binding's roleRef cannot change in place.
            ops.delete()
            ops.create(manifest)
        else:
            body = dict(manifest, metadata={
                **manifest["metadata"], "labels": {**have_labels, **wanted_labels},
                "annotations": current_dict["metadata"].get("annotations"),
                # A concurrent writer's change then fails loudly (409) instead of being overwritten.
                "resourceVersion": current_dict["metadata"]["resourceVersion"]})
            try:
                ops.replace(body)
            except ApiException as exc:
                if exc.status == 409:
                    raise RetryableError(f"{_describe(manifest)} changed while it was being updated; "
                                         "the next attempt reads it again") from exc
                raise
        return "updated"


class _Ops:
    """read / create / replace / patch / delete of one object, cluster-scoped or namespaced alike."""

    def __init__(self, api: Any, suffix: str, name: str, ns: str | None):
        self.api, self.suffix, self.name, self.ns = api, suffix, name, ns

    def _call(self, verb: str, *args: Any) -> Any:
        method = getattr(self.api, f"{verb}_{self.suffix}")
        where = (self.ns,) if self.ns is not None else ()
        if verb == "create":
            return method(*where, *args, _request_timeout=_REQUEST_TIMEOUT)
        return method(self.name, *where, *args, _request_timeout=_REQUEST_TIMEOUT)

    def read(self) -> Any:
        try:
            return self._call("read")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, body: dict[str, Any]) -> None:
        self._call("create", body)

    def replace(self, body: dict[str, Any]) -> None:
        self._call("replace", body)

    def patch(self, body: dict[str, Any]) -> None:
        self._call("patch", body)

    def delete(self) -> None:
        try:
            self._call("delete")
        except ApiException as exc:
            if exc.status != 404:
                raise


# Maps whose values are resource quantities: the server rewrites them canonically ("1000m" -> "1").
_QUANTITY_MAPS = frozenset({"hard", "default", "defaultRequest", "max", "min", "maxLimitRequestRatio"})


def _normal(value: Any, key: str = "") -> Any:
    """A comparable form: empty values dropped (the server omits them), quantities parsed."""
    if isinstance(value, dict):
        if key in _QUANTITY_MAPS:
            return {k: _quantity(v) for k, v in value.items()}
        pairs = ((k, _normal(v, k)) for k, v in value.items())
        return {k: v for k, v in pairs if v not in (None, [], {})}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _quantity(value: Any) -> Decimal | Any:
    try:
        return parse_quantity(value)
    except (ValueError, TypeError):
        return value
