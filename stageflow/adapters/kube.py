"""The Kubernetes API through the official client, built from one kubeconfig file.

Vendor errors are translated here and nowhere else (raised ``from`` the original):

    no answer (connection refused, reset, timeout), HTTP 408/429/5xx  -> ClusterUnavailable (retryable)
    HTTP 404                                                            -> NotFound
    any other 4xx                                                       -> TerminalError with the API's message
    unreadable kubeconfig                                               -> TerminalError

Example::

    kube = Kube(home / "kube" / "kubeconfig")
    kube.ensure_namespace("shop-dev", labels={"stageflow.dev/stage": "dev"})
    status = kube.wait_for_rollout("shop-dev", "cart", timeout=180, on_progress=lambda s: print(s.describe()))
"""
from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from pydantic import SecretStr
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from stageflow.adapters.helm import ClusterUnavailable
from stageflow.errors import NotFound, RetryableError, StageflowError, TerminalError

__all__ = [
    "Kube", "DeploymentStatus", "DeploymentCondition", "RolloutFailed", "RolloutTimeout", "ClusterUnavailable",
    "StatefulSetStatus", "StatefulSetTimeout",
]

# Metadata only: listing Secrets this way never transfers their data to this process.
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io, application/json"


@dataclass(frozen=True)
class DeploymentCondition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class DeploymentStatus:
    """A Deployment's spec and status counters at one moment, as plain data."""

    namespace: str
    name: str
    generation: int
    observed_generation: int
    desired: int  # spec.replicas
    replicas: int  # status.replicas: pods of every ReplicaSet, old ones included
    updated: int
    ready: int
    available: int
    images: tuple[str, ...] = ()
    conditions: tuple[DeploymentCondition, ...] = ()

    @classmethod
    def from_api(cls, deployment: k8s.V1Deployment) -> DeploymentStatus:
        meta, spec, status = deployment.metadata, deployment.spec, deployment.status or k8s.V1DeploymentStatus()
        containers = spec.template.spec.containers if spec and spec.template and spec.template.spec else []
        return cls(
            namespace=meta.namespace or "", name=meta.name or "",
            generation=meta.generation or 0, observed_generation=status.observed_generation or 0,
            # An unset spec.replicas means 1, as the API server defaults it.
            desired=1 if spec is None or spec.replicas is None else spec.replicas,
            replicas=status.replicas or 0, updated=status.updated_replicas or 0,
            ready=status.ready_replicas or 0, available=status.available_replicas or 0,
            images=tuple(c.image for c in containers or []),
            conditions=tuple(DeploymentCondition(c.type, c.status, c.reason or "", c.message or "")
                             for c in status.conditions or []),
        )

    @property
    def observed(self) -> bool:
        """The controller has seen the latest spec; before that the counters describe an older one."""
        return self.observed_generation >= self.generation

    @property
    def complete(self) -> bool:
        """Every desired pod runs the new spec and is ready and available, and no old pod is left."""
        return (self.observed and self.updated == self.ready == self.available == self.desired
                and self.replicas == self.desired)

    @property
    def progress_deadline_exceeded(self) -> bool:
        # A stale condition from an earlier rollout says nothing about the current spec.
        progressing = self.condition("Progressing")
        return (self.observed and progressing is not None and progressing.status == "False"
                and progressing.reason == "ProgressDeadlineExceeded")

    def condition(self, type_: str) -> DeploymentCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def describe(self) -> str:
        return (f"{self.namespace}/{self.name}: {self.updated}/{self.desired} updated, {self.ready} ready, "
                f"{self.available} available, {self.replicas} total (generation {self.observed_generation}"
                f"/{self.generation} observed)")


class RolloutFailed(TerminalError):
    """Kubernetes gave up on the rollout (ProgressDeadlineExceeded)."""

    def __init__(self, status: DeploymentStatus):
        self.status = status
        progressing = status.condition("Progressing")
        detail = progressing.message if progressing else ""
        super().__init__(f"rollout of {status.namespace}/{status.name} failed: ProgressDeadlineExceeded: "
                         f"{detail} [{status.describe()}]")


class RolloutTimeout(TerminalError):
    """The rollout did not complete within the caller's timeout; ``status`` is the last one seen."""

    def __init__(self, namespace: str, name: str, timeout: float, status: DeploymentStatus | None,
                 last_error: StageflowError | None = None):
        self.status, self.last_error = status, last_error
        seen = status.describe() if status else "the deployment was never seen"
        unavailable = status.condition("Available") if status else None
        why = f"; {unavailable.message}" if unavailable and unavailable.status != "True" and unavailable.message else ""
        error = f"; last API error: {last_error}" if last_error else ""
        super().__init__(f"rollout of {namespace}/{name} not complete after {timeout:.0f}s: {seen}{why}{error}")


@dataclass(frozen=True)
class StatefulSetStatus:
    """A StatefulSet's spec and status counters at one moment, as plain data."""

    namespace: str
    name: str
    generation: int
    observed_generation: int
    desired: int  # spec.replicas
    replicas: int
    ready: int
    updated: int
    current_revision: str = ""
    update_revision: str = ""

    @classmethod
    def from_api(cls, statefulset: k8s.V1StatefulSet) -> StatefulSetStatus:
        meta, spec = statefulset.metadata, statefulset.spec
        status = statefulset.status or k8s.V1StatefulSetStatus(replicas=0)
        return cls(
            namespace=meta.namespace or "", name=meta.name or "",
            generation=meta.generation or 0, observed_generation=status.observed_generation or 0,
            desired=1 if spec is None or spec.replicas is None else spec.replicas,
            replicas=status.replicas or 0, ready=status.ready_replicas or 0, updated=status.updated_replicas or 0,
            current_revision=status.current_revision or "", update_revision=status.update_revision or "",
        )

    @property
    def complete(self) -> bool:
        """The controller has seen the latest spec and every desired pod runs it and is Ready.

        The same test as ``kubectl rollout status``: the rolling update is finished once the
        controller moves currentRevision up to updateRevision.
        """
        return (0 < self.generation <= self.observed_generation and self.ready == self.replicas == self.desired
                and self.current_revision == self.update_revision)

    def describe(self) -> str:
        return (f"{self.namespace}/{self.name}: {self.ready}/{self.desired} ready, {self.replicas} total "
                f"(generation {self.observed_generation}/{self.generation} observed)")


class StatefulSetTimeout(TerminalError):
    """The StatefulSet did not become Ready within the caller's timeout; ``status`` is the last one seen."""

    def __init__(self, namespace: str, name: str, timeout: float, status: StatefulSetStatus | None,
                 last_error: StageflowError | None = None):
        self.status, self.last_error = status, last_error
        seen = status.describe() if status else "the statefulset was never seen"
        error = f"; last API error: {last_error}" if last_error else ""
        super().__init__(f"statefulset {namespace}/{name} not ready after {timeout:.0f}s: {seen}{error}")


class Kube:
    """A small, typed slice of the Kubernetes API; every method raises Stageflow errors only."""

    def __init__(self, kubeconfig: Path, *, request_timeout: float = 10.0):
        self.kubeconfig = Path(kubeconfig)
        self.request_timeout = request_timeout
        config = k8s.Configuration()
        try:
            k8s_config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=config,
                                        persist_config=False)
        except (ConfigException, OSError, yaml.YAMLError, TypeError, ValueError) as exc:
            raise TerminalError(f"cannot load kubeconfig {self.kubeconfig}: {type(exc).__name__}") from exc
        if not config.verify_ssl:
            # The kubeconfig opted out of TLS verification itself (the embedded control plane does, on
            # loopback only); repeating urllib3's warning on every poll would drown the real logs.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self._client = k8s.ApiClient(config)
        self._core = k8s.CoreV1Api(self._client)
        self._apps = k8s.AppsV1Api(self._client)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- namespaces --------------------------------------------------------------------------
    def namespace_exists(self, name: str) -> bool:
        with _translated(f"namespace {name}"):
            return self._read_or_none(self._core.read_namespace, name) is not None

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> bool:
        """Create the namespace unless it exists (then add any missing ``labels``); True if created now."""
        wanted = dict(labels or {})
        with _translated(f"namespace {name}"):
            namespace = self._read_or_none(self._core.read_namespace, name)
            if namespace is None:
                body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=wanted or None))
                try:
                    self._core.create_namespace(body, _request_timeout=self.request_timeout)
                    return True
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                # Someone created it between our read and create: adopt theirs.
                namespace = self._core.read_namespace(name, _request_timeout=self.request_timeout)
            if namespace.status is not None and namespace.status.phase == "Terminating":
                raise RetryableError(f"namespace {name} is being deleted; it can be created again once it is gone")
            current = namespace.metadata.labels or {}
            missing = {k: v for k, v in wanted.items() if current.get(k) != v}
            if missing:
                self._core.patch_namespace(name, {"metadata": {"labels": missing}},
                                           _request_timeout=self.request_timeout)
            return False

    # -- deployments -------------------------------------------------------------------------
    def deployment_status(self, namespace: str, name: str) -> DeploymentStatus | None:
        """The Deployment's current status, or None when it does not exist."""
        return self._deployment_status(namespace, name, self.request_timeout)

    def list_deployments(self, namespace: str, label_selector: str | None = None) -> list[DeploymentStatus]:
        with _translated(f"deployments in {namespace}"):
            found = self._apps.list_namespaced_deployment(namespace, label_selector=label_selector or "",
                                                          _request_timeout=self.request_timeout)
        return sorted((DeploymentStatus.from_api(d) for d in found.items), key=lambda s: s.name)

    def wait_for_rollout(self, namespace: str, name: str, *, timeout: float, interval: float = 1.0,
                         on_progress: Callable[[DeploymentStatus], None] | None = None) -> DeploymentStatus:
        """Poll until the rollout is complete (see :attr:`DeploymentStatus.complete`).

        ``on_progress`` hears every status that differs from the previous one. A failing or
        missing API server is tolerated until the deadline, since it may come back in time; the
        deadline then raises RolloutTimeout naming the last status and the last API error.
        """
        deadline = time.monotonic() + timeout
        last: DeploymentStatus | None = None
        last_error: StageflowError | None = None
        # Most rollouts finish within a second of the upgrade: poll quickly first, then back off
        # to ``interval`` so a long rollout does not hammer the API server.
        pause = min(0.1, interval)
        while True:
            remaining = deadline - time.monotonic()
            try:
                status = self._deployment_status(namespace, name, max(1.0, min(self.request_timeout, remaining)))
                last_error = None
            except ClusterUnavailable as exc:
                status, last_error = None, exc
            if status is not None:
                if status != last and on_progress is not None:
                    on_progress(status)
                last = status
                if status.progress_deadline_exceeded:
                    raise RolloutFailed(status)
                if status.complete:
                    return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RolloutTimeout(namespace, name, timeout, last, last_error)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, interval)

    # -- secrets -----------------------------------------------------------------------------
    def get_secret_names(self, namespace: str) -> list[str]:
        """Names of the Secrets in ``namespace``; their contents are never fetched."""
        with _translated(f"secrets in {namespace}"):
            listing = self._client.call_api(
                "/api/v1/namespaces/{namespace}/secrets", "GET", path_params={"namespace": namespace},
                header_params={"Accept": _METADATA_ONLY}, auth_settings=["BearerToken"],
                response_type="object", _return_http_data_only=True, _request_timeout=self.request_timeout)
        return sorted(item["metadata"]["name"] for item in (listing or {}).get("items") or [])

    def ensure_secret(self, namespace: str, name: str, data: dict[str, SecretStr],
                      labels: dict[str, str] | None = None, *, replace: bool = False) -> bool:
        """Create the Opaque Secret unless it exists; True if created now, or (``replace``) updated now.

        Without ``replace`` an existing Secret is adopted as it is, whatever it holds: a password
        generated by an earlier run must never be overwritten by a new one. With ``replace`` its
        data (and ``labels``) are set to exactly ``data`` when they differ. Values never appear in
        an error or log: the API's own message is dropped for Secrets, it can echo the body.
        """
        meta = k8s.V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels or {}) or None)
        body = k8s.V1Secret(metadata=meta, type="Opaque", string_data={k: v.get_secret_value() for k, v in data.items()})
        with _translated_quietly(f"secret {namespace}/{name}"):
            current = self._read_or_none(self._core.read_namespaced_secret, name, namespace)
            if current is None:
                try:
                    self._core.create_namespaced_secret(namespace, body, _request_timeout=self.request_timeout)
                    return True
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                # Created between our read and create (a concurrent run): adopt it like any other.
                current = self._core.read_namespaced_secret(name, namespace, _request_timeout=self.request_timeout)
            if not replace:
                return False
            wanted = {k: v.get_secret_value() for k, v in data.items()}
            have_labels = current.metadata.labels or {}
            if _decoded(current.data) == wanted and all(have_labels.get(k) == v for k, v in (labels or {}).items()):
                return False
            # A replace, not a patch: keys the caller no longer wants must go, and resourceVersion
            # makes a concurrent writer's change fail loudly instead of being lost.
            body.metadata.resource_version = current.metadata.resource_version
            body.metadata.labels = {**have_labels, **(labels or {})} or None
            body.data, body.string_data = _encoded(wanted), None
            try:
                self._core.replace_namespaced_secret(name, namespace, body, _request_timeout=self.request_timeout)
            except ApiException as exc:
                if exc.status == 409:
                    exc.body, exc.headers = None, None  # the answer may echo the Secret we sent
                    raise RetryableError(f"secret {namespace}/{name} changed while it was being replaced; "
                                         "the next attempt reads it again") from exc
                raise
            return True

    def secret_keys(self, namespace: str, name: str) -> list[str] | None:
        """The keys the Secret holds (sorted), or None when it does not exist."""
        with _translated_quietly(f"secret {namespace}/{name}"):
            found = self._read_or_none(self._core.read_namespaced_secret, name, namespace)
        return None if found is None else sorted((found.data or {}).keys())

    def read_secret(self, namespace: str, name: str) -> dict[str, SecretStr] | None:
        """The Secret's decoded data, each value wrapped so it cannot leak into a repr; None if missing."""
        with _translated_quietly(f"secret {namespace}/{name}"):
            found = self._read_or_none(self._core.read_namespaced_secret, name, namespace)
        return None if found is None else {k: SecretStr(v) for k, v in _decoded(found.data).items()}

    def delete_secret(self, namespace: str, name: str) -> bool:
        """Delete the Secret; False when it was already gone (safe to call twice)."""
        with _translated_quietly(f"secret {namespace}/{name}"):
            return self._delete_or_false(self._core.delete_namespaced_secret, name, namespace)

    # -- statefulsets and volumes ------------------------------------------------------------
    def statefulset_status(self, namespace: str, name: str) -> StatefulSetStatus | None:
        """The StatefulSet's current status, or None when it does not exist."""
        return self._statefulset_status(namespace, name, self.request_timeout)

    def wait_for_statefulset(self, namespace: str, name: str, *, timeout: float,
                             interval: float = 1.0) -> tuple[int, int]:
        """Poll until every desired replica runs the current revision and is Ready; returns (ready, desired).

        Like :meth:`wait_for_rollout`, a failing API server is tolerated until the deadline, which
        then raises StatefulSetTimeout naming the last status seen and the last API error.
        """
        deadline = time.monotonic() + timeout
        last: StatefulSetStatus | None = None
        last_error: StageflowError | None = None
        pause = min(0.2, interval)
        while True:
            remaining = deadline - time.monotonic()
            try:
                last = self._statefulset_status(namespace, name, max(1.0, min(self.request_timeout, remaining)))
                last_error = None
            except ClusterUnavailable as exc:
                last_error = exc
            if last is not None and last.complete:
                return last.ready, last.desired
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StatefulSetTimeout(namespace, name, timeout, last, last_error)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, interval)

    def delete_pvcs(self, namespace: str, label_selector: str) -> int:
        """Delete the PersistentVolumeClaims matching ``label_selector``; returns how many were deleted now."""
        if not label_selector.strip():
            # An empty selector matches every claim in the namespace: never what a caller means.
            raise TerminalError(f"delete_pvcs in {namespace}: an empty label selector would delete every claim")
        with _translated(f"persistentvolumeclaims in {namespace} ({label_selector})"):
            claims = self._core.list_namespaced_persistent_volume_claim(
                namespace, label_selector=label_selector, _request_timeout=self.request_timeout)
            return sum(self._delete_or_false(self._core.delete_namespaced_persistent_volume_claim,
                                             c.metadata.name, namespace)
                       for c in claims.items if c.metadata.deletion_timestamp is None)

    def list_pvcs(self, namespace: str, label_selector: str | None = None) -> list[tuple[str, str]]:
        """(name, phase) of the PersistentVolumeClaims in ``namespace``, sorted by name."""
        with _translated(f"persistentvolumeclaims in {namespace}"):
            claims = self._core.list_namespaced_persistent_volume_claim(
                namespace, label_selector=label_selector or "", _request_timeout=self.request_timeout)
        return sorted((c.metadata.name, (c.status.phase if c.status else None) or "") for c in claims.items)

    # -- helpers -----------------------------------------------------------------------------
    def _deployment_status(self, namespace: str, name: str, request_timeout: float) -> DeploymentStatus | None:
        with _translated(f"deployment {namespace}/{name}"):
            found = self._read_or_none(self._apps.read_namespaced_deployment, name, namespace,
                                       request_timeout=request_timeout)
        return None if found is None else DeploymentStatus.from_api(found)

    def _statefulset_status(self, namespace: str, name: str, request_timeout: float) -> StatefulSetStatus | None:
        with _translated(f"statefulset {namespace}/{name}"):
            found = self._read_or_none(self._apps.read_namespaced_stateful_set, name, namespace,
                                       request_timeout=request_timeout)
        return None if found is None else StatefulSetStatus.from_api(found)

    def _delete_or_false(self, delete: Callable[..., Any], name: str, namespace: str) -> bool:
        try:
            delete(name, namespace, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _read_or_none(self, read: Callable[..., Any], *args: str, request_timeout: float | None = None) -> Any:
        try:
            return read(*args, _request_timeout=request_timeout or self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Translate the client's exceptions for an operation on ``what``."""
    try:
        yield
    except ApiException as exc:
        raise _from_api_exception(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # Connection refused/reset, DNS, TLS and read timeouts: nothing answered properly.
        reason = getattr(exc, "reason", None) or exc
        raise ClusterUnavailable(f"{what}: Kubernetes API unreachable: {type(reason).__name__}: {reason}") from exc


@contextmanager
def _translated_quietly(what: str) -> Iterator[None]:
    """Like :func:`_translated`, for Secrets: the API may echo the submitted object in its answer, so
    the body and headers are dropped before the error (or its chained cause) can be printed."""
    with _translated(what):
        try:
            yield
        except ApiException as exc:
            exc.body, exc.headers = None, None
            raise


def _decoded(data: dict[str, str] | None) -> dict[str, str]:
    # Secret data comes base64-encoded; binary values (never written by Stageflow) decode leniently.
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (data or {}).items()}


def _encoded(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode("ascii") for k, v in data.items()}


def _from_api_exception(exc: ApiException, what: str) -> StageflowError:
    status = exc.status or 0
    message = _api_message(exc)
    if status == 404:
        return NotFound(f"{what}: not found ({message})")
    if status in (0, 408, 429) or status >= 500:
        return ClusterUnavailable(f"{what}: Kubernetes API answered {status or 'nothing'}: {message}")
    return TerminalError(f"{what}: Kubernetes API refused ({status}): {message}")


def _api_message(exc: ApiException) -> str:
    # The API server explains itself in a Status object; fall back to the HTTP reason phrase.
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or "no message") if isinstance(body, dict) else str(exc.reason)
