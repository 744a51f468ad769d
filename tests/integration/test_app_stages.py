"""ensure-app-stages on the embedded control plane: the hardened stage namespaces are created (the
real API server validates every manifest), a re-run changes nothing, drift is put back, the
service chart is admitted under ``restricted`` Pod Security in prod, and kube-score finds nothing
critical in the chart's prod manifests together with the prod network policies."""
from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.ensure_app_stages import ensure_app_stages
from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.errors import NotFound
from stageflow.local.tools import tools_bin
from stageflow.spec import App, ChartRef, DeployedVersion, ImageRef, Service, app_path, namespace, to_yaml
from stageflow.steps import ensure_app_stages as step
from stageflow.steps.helm_deploy import chart_values
from tests.integration.helpers import infra

pytestmark = pytest.mark.integration

APP = "stages"
DIGEST = "sha256:" + "ab" * 32
PSA = "pod-security.kubernetes.io/"


@pytest.fixture(scope="module")
def api(settings):
    with step.connect(settings.kubeconfig) as client:
        yield client


@pytest.fixture(scope="module")
def first_run(settings):
    """APP declared in the infrastructure repo, then the flow run once for it."""
    checkout = infra(settings, "stages")
    if not (checkout.sync() / app_path(APP)).exists():
        checkout.commit_and_push({app_path(APP): to_yaml(App(name=APP, owners=["alice"], approvers=["bob"]))},
                                 f"Declare app {APP}")
    return ensure_app_stages(app=APP)


def _objects(api, stage: str) -> list[tuple[str, str, object]]:
    """(kind, name, object read from the server) for every object the step manages in one stage."""
    ns = namespace(APP, stage)
    core, net, rbac = k8s.CoreV1Api(api), k8s.NetworkingV1Api(api), k8s.RbacAuthorizationV1Api(api)
    readers = {"Namespace": lambda name: core.read_namespace(name),
               "ResourceQuota": lambda name: core.read_namespaced_resource_quota(name, ns),
               "LimitRange": lambda name: core.read_namespaced_limit_range(name, ns),
               "ServiceAccount": lambda name: core.read_namespaced_service_account(name, ns),
               "NetworkPolicy": lambda name: net.read_namespaced_network_policy(name, ns),
               "Role": lambda name: rbac.read_namespaced_role(name, ns),
               "RoleBinding": lambda name: rbac.read_namespaced_role_binding(name, ns)}
    return [(m["kind"], m["metadata"]["name"], readers[m["kind"]](m["metadata"]["name"]))
            for m in step.desired_objects(APP, stage)]


def _allowed(api, stage: str, verb: str, resource: str, *, subresource: str = "", group: str = "",
             user: str = "dev", groups: tuple[str, ...] = (f"{APP}-developers",)) -> bool:
    review = k8s.V1SubjectAccessReview(spec=k8s.V1SubjectAccessReviewSpec(
        user=user, groups=list(groups), resource_attributes=k8s.V1ResourceAttributes(
            namespace=namespace(APP, stage), verb=verb, resource=resource, subresource=subresource or None,
            group=group)))
    return k8s.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed


def _wait_for_quota_status(api, stage: str, timeout: float = 60) -> None:
    """The quota controller writes status.hard once; until then pods are refused and the
    quota's resourceVersion still moves without us."""
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        quota = core.read_namespaced_resource_quota(step.QUOTA, namespace(APP, stage))
        if quota.status and quota.status.hard and set(quota.status.hard) == set(quota.spec.hard):
            return
        assert time.monotonic() < deadline, f"quota in {namespace(APP, stage)} never got a status"
        time.sleep(0.5)


def test_flow_creates_hardened_stages(first_run, api):
    assert set(first_run) == {f"{APP}-test", f"{APP}-prod"}
    for stage in ("test", "prod"):
        outcome = first_run[namespace(APP, stage)]
        # All created on a fresh platform; a kept one (STAGEFLOW_TEST_HOME) has them from before.
        assert outcome["updated"] == []
        assert len(outcome["created"]) + len(outcome["unchanged"]) == len(step.desired_objects(APP, stage))
        objects = _objects(api, stage)  # every one exists (a 404 would raise)
        labels = objects[0][2].metadata.labels
        assert labels[PSA + "enforce"] == {"test": "baseline", "prod": "restricted"}[stage]
        assert labels[PSA + "enforce-version"] == "latest"
        assert labels[PSA + "warn"] == labels[PSA + "audit"] == "restricted"
        assert labels["stageflow.dev/app"] == APP and labels["stageflow.dev/stage"] == stage
        assert labels["app.kubernetes.io/managed-by"] == "stageflow"
    prod_policies = {name for kind, name, _ in _objects(api, "prod") if kind == "NetworkPolicy"}
    assert prod_policies == {"default-deny", "allow-dns", "allow-ingress-controller", "allow-same-app"}
    test_policies = {name for kind, name, _ in _objects(api, "test") if kind == "NetworkPolicy"}
    assert test_policies == {"allow-same-namespace", "allow-dns", "allow-ingress-controller"}
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["app-stages"])))
    assert artifacts and f"| {APP}-prod |" in artifacts[0].data and f"| {APP}-test |" in artifacts[0].data


def test_developer_and_deployer_rights(first_run, api):
    # Developers: intercept and debug in test, only look in prod, never read prod Secrets.
    assert _allowed(api, "test", "create", "pods", subresource="exec")
    assert _allowed(api, "test", "create", "pods", subresource="portforward")
    assert _allowed(api, "test", "patch", "deployments", group="apps")
    assert not _allowed(api, "prod", "create", "pods", subresource="exec")
    assert not _allowed(api, "prod", "patch", "deployments", group="apps")
    assert _allowed(api, "prod", "list", "pods")
    assert not _allowed(api, "prod", "get", "secrets")
    assert not _allowed(api, "prod", "list", "pods", groups=("other-developers",))
    # The deployer: Helm releases (Secrets) and workloads, but not RBAC or the quota.
    deployer = dict(user=f"system:serviceaccount:{namespace(APP, 'prod')}:{step.DEPLOYER}",
                    groups=("system:serviceaccounts",))
    assert _allowed(api, "prod", "create", "secrets", **deployer)
    assert _allowed(api, "prod", "patch", "deployments", group="apps", **deployer)
    assert not _allowed(api, "prod", "create", "roles", group="rbac.authorization.k8s.io", **deployer)
    assert not _allowed(api, "prod", "delete", "resourcequotas", **deployer)


def test_rerun_changes_nothing_and_drift_is_put_back(first_run, api):
    for stage in ("test", "prod"):
        _wait_for_quota_status(api, stage)
    before = {(s, k, n): o.metadata.resource_version for s in ("test", "prod") for k, n, o in _objects(api, s)}
    again = step.run(step.Config(app=APP), api)
    assert again.created == [] and again.updated == []
    assert len(again.unchanged) == len(before)
    after = {(s, k, n): o.metadata.resource_version for s in ("test", "prod") for k, n, o in _objects(api, s)}
    assert after == before

    # Someone loosens prod by hand: a weaker PSA level and a DNS policy that lets any port out.
    ns = namespace(APP, "prod")
    k8s.CoreV1Api(api).patch_namespace(ns, {"metadata": {"labels": {PSA + "enforce": "privileged", "team": "x"}}})
    net = k8s.NetworkingV1Api(api)
    net.patch_namespaced_network_policy("allow-dns", ns, [{"op": "remove", "path": "/spec/egress/0/ports"}])
    repaired = step.run(step.Config(app=APP, stages=("prod",)), api)
    assert sorted(repaired.updated) == [f"Namespace/{ns}", f"NetworkPolicy/{ns}/allow-dns"]
    labels = k8s.CoreV1Api(api).read_namespace(ns).metadata.labels
    assert labels[PSA + "enforce"] == "restricted" and labels["team"] == "x"  # other people's labels stay
    assert [p.port for p in net.read_namespaced_network_policy("allow-dns", ns).spec.egress[0].ports] == [53, 53]

    # Quantities the server rewrites ("0.25" is stored as "250m") are compared by value, not text.
    quarter = step.Config(app=APP, stages=("prod",), limits={"prod": step.StageLimits(default_limit_cpu="0.25")})
    assert step.run(quarter, api).updated == [f"LimitRange/{ns}/{step.LIMITS}"]
    assert step.run(quarter, api).updated == []
    assert step.run(step.Config(app=APP, stages=("prod",)), api).updated == [f"LimitRange/{ns}/{step.LIMITS}"]


def test_flow_for_every_app_adopts_what_is_there(first_run, api):
    everything = ensure_app_stages()  # no app: every app the infrastructure repo declares
    for stage in ("test", "prod"):
        ours = everything[namespace(APP, stage)]
        assert ours["created"] == [] and ours["updated"] == []
        assert len(ours["unchanged"]) == len(step.desired_objects(APP, stage))


def test_flow_refuses_an_undeclared_app(settings):
    with pytest.raises(NotFound):
        ensure_app_stages(app="nosuchapp")


def _rendered_prod(settings) -> list[dict]:
    """The service chart's manifests for a prod release, as helm:deploy would install them."""
    svc = Service(name="web", app=APP, repository=f"{APP}-web", image=f"{settings.registry}/{APP}/web")
    version = DeployedVersion(app=APP, service="web", stage="prod",
                              image=ImageRef(repository=svc.image, digest=DIGEST, tag="v1"),
                              chart=ChartRef())
    text = Helm(settings.kubeconfig).template("web", settings.chart, namespace(APP, "prod"), chart_values(svc, version))
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        doc["metadata"].setdefault("namespace", namespace(APP, "prod"))
    return docs


def test_service_chart_is_admitted_under_restricted(first_run, settings, api):
    ns = namespace(APP, "prod")
    _wait_for_quota_status(api, "prod")
    deployment = next(d for d in _rendered_prod(settings) if d["kind"] == "Deployment")
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + 30
    while not [a for a in core.list_namespaced_service_account(ns).items if a.metadata.name == "default"]:
        assert time.monotonic() < deadline, "the default ServiceAccount never appeared"
        time.sleep(0.5)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa-check", "labels": {"check": "psa"}},
           "spec": deployment["spec"]["template"]["spec"]}
    # Admission (Pod Security enforce included) runs in full on a server-side dry run.
    try:
        core.create_namespaced_pod(ns, pod, dry_run="All")
    except ApiException as exc:
        pytest.fail(f"the service chart's pod is refused in {ns}: {exc.body}")
    # The same check refuses a pod that breaks restricted, so the policy really is enforced.
    root = {**pod, "spec": {"containers": [{"name": "c", "image": "busybox@" + DIGEST}]}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, root, dry_run="All")
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 403 and 'violates PodSecurity "restricted:latest"' in message, message

    # And for real: the Deployment's pods are created, fit the quota and become ready.
    try:
        k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment)
    except ApiException as exc:
        if exc.status != 409:  # left by an earlier session on a kept platform
            raise
    status = Kube(settings.kubeconfig).wait_for_rollout(ns, "web", timeout=120)
    assert status.complete and status.ready == 1


KUBE_SCORE_IGNORES = {
    # Images are pinned by digest: IfNotPresent can never run anything but the pinned image.
    "container-image-pull-policy": "digest-pinned images",
}


def _kube_score(docs: list[dict], tmp_path) -> subprocess.CompletedProcess:
    manifests = tmp_path / "prod.yaml"
    manifests.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    ignores = [arg for check in KUBE_SCORE_IGNORES for arg in ("--ignore-test", check)]
    return subprocess.run([str(tools_bin() / "kube-score"), "score", "--output-format", "ci", *ignores, str(manifests)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not (tools_bin() / "kube-score").is_file(),
                    reason="kube-score is not built (scripts/build-tools.sh builds it)")
def test_kube_score_finds_nothing_critical_in_prod(settings, tmp_path):
    rendered = _rendered_prod(settings)
    policies = [m for m in step.desired_objects(APP, "prod") if m["kind"] == "NetworkPolicy"]
    scored = _kube_score(rendered + policies, tmp_path)
    assert "[CRITICAL]" not in scored.stdout and scored.returncode == 0, scored.stdout + scored.stderr
    assert "[OK]" in scored.stdout  # the Deployment really was scored
    # Without the stage's policies the pod is unprotected: the check that catches it is live.
    bare = _kube_score(rendered, tmp_path)
    critical = [line for line in bare.stdout.splitlines() if line.startswith("[CRITICAL]")]
    assert bare.returncode != 0 and critical and all("NetworkPolicy" in line for line in critical), bare.stdout
