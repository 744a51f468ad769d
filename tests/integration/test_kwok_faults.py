"""The embedded platform's fault hook (stageflow/local/kwok/stages.yaml): kwok never makes a pod
Ready while its app.kubernetes.io/version label is ``never-ready``, which the service chart sets
from ``image.tag``. Any other tag becomes Ready as usual, so a test can make exactly one release's
rollout hang and watch what the automatic rollback does about it."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube, RolloutTimeout

pytestmark = pytest.mark.integration

RELEASE = "cart"
# kwok runs no containers, so nothing is ever pulled: any well-formed digest will do.
DIGEST = "sha256:" + "5eed" * 16
# Long enough for a healthy rollout on a busy 2-core machine; kwok makes pods Ready within a second.
READY_WITHIN_S = 60.0
# How long the faulty release gets to prove it stays unready (its progress deadline is 300s).
STUCK_FOR_S = 8.0


@pytest.fixture
def namespace(settings) -> Iterator[str]:
    """A throwaway namespace, deleted afterwards with everything in it (Helm's release records too)."""
    name = f"kwok-faults-{uuid.uuid4().hex[:8]}"
    yield name
    core = client.CoreV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def chart_values(tag: str | None) -> dict[str, Any]:
    image = {"repository": "registry.local:5000/faults/cart", "digest": DIGEST, **({"tag": tag} if tag else {})}
    return {"app": "kwok-faults", "image": image}


def pods_of_version(settings, namespace: str, tag: str) -> list[client.V1Pod]:
    core = client.CoreV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/version={tag}"
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def is_ready(pod: client.V1Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def gone(listing: Callable[[], list[Any]], *, within: float) -> bool:
    """Poll until ``listing`` is empty: a deleted pod lingers until kwok's pod-delete stage removes it."""
    deadline = time.monotonic() + within
    while listing():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_a_never_ready_tag_hangs_the_rollout_and_a_rollback_recovers(settings, namespace):
    helm = Helm(settings.kubeconfig)
    with Kube(settings.kubeconfig) as kube:
        kube.ensure_namespace(namespace)

        # Any other tag: the same chart becomes Ready.
        good = helm.upgrade_install(RELEASE, settings.chart, namespace, chart_values("1.0.0"), create_namespace=False)
        status = kube.wait_for_rollout(namespace, RELEASE, timeout=READY_WITHIN_S)
        assert status.ready == status.desired == 1
        (healthy,) = pods_of_version(settings, namespace, "1.0.0")
        assert is_ready(healthy)

        # No tag, no label: the hook's selector reads null there, which NotIn lets through.
        helm.upgrade_install("untagged", settings.chart, namespace, chart_values(None), create_namespace=False)
        assert kube.wait_for_rollout(namespace, "untagged", timeout=READY_WITHIN_S).ready == 1

        # The fault: the new pod is scheduled onto a kwok node but never becomes Ready.
        helm.upgrade_install(RELEASE, settings.chart, namespace, chart_values("never-ready"), create_namespace=False)
        with pytest.raises(RolloutTimeout) as timed_out:
            kube.wait_for_rollout(namespace, RELEASE, timeout=STUCK_FOR_S)
        stuck_status = timed_out.value.status
        assert stuck_status is not None and stuck_status.observed and stuck_status.updated == 1
        (stuck,) = pods_of_version(settings, namespace, "never-ready")
        assert stuck.spec.node_name, "the pod must be scheduled, so it is kwok that keeps it unready"
        assert stuck.status.phase == "Pending" and not is_ready(stuck)
        # maxUnavailable 0: the previous version keeps serving meanwhile.
        (still_serving,) = pods_of_version(settings, namespace, "1.0.0")
        assert is_ready(still_serving)

        # Rolling back to the good revision completes, and the unready pod goes away (kwok still deletes it).
        helm.rollback(RELEASE, namespace, good.revision)
        recovered = kube.wait_for_rollout(namespace, RELEASE, timeout=READY_WITHIN_S)
        assert recovered.ready == recovered.desired == recovered.replicas == 1
        assert gone(lambda: pods_of_version(settings, namespace, "never-ready"), within=READY_WITHIN_S)
