"""The Helm and Kubernetes adapters without a cluster: error translation on real Helm and
client output, values handling, and the rollout logic on constructed status data."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from stageflow.adapters.helm import (
    ChartError, ClusterUnavailable, Helm, HelmRelease, ReleaseBusy, ReleaseNotReady, classify_helm_error,
    helm_binary,
)
from stageflow.adapters.kube import (
    DeploymentCondition, DeploymentStatus, Kube, RolloutTimeout, _from_api_exception,
)
from stageflow.errors import NotFound, RetryableError, TerminalError

CHART = Path(__file__).resolve().parents[2] / "charts" / "service"
DIGEST = "sha256:" + "f" * 64
TOKEN = "tok-3f9a-never-print-me"


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig naming a port nothing listens on (port 1 is privileged and unused)."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": TOKEN}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "admin"}}],
    }))
    return path


@pytest.fixture(scope="module")
def real_helm() -> str:
    try:
        return helm_binary()
    except TerminalError as exc:
        pytest.skip(f"the helm binary is not built yet (`make setup` runs scripts/build-tools.sh): {exc}")


# -- Helm's messages, as Helm prints them ------------------------------------------------------
@pytest.mark.parametrize("stderr, expected", [
    ('Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp 127.0.0.1:6443: '
     'connect: connection refused', ClusterUnavailable),
    ("Error: UPGRADE FAILED: the server is currently unable to handle the request (get secrets)", ClusterUnavailable),
    ("Error: INSTALLATION FAILED: context deadline exceeded", ClusterUnavailable),
    ("Error: UPGRADE FAILED: etcdserver: request timed out", ClusterUnavailable),
    ('Error: INSTALLATION FAILED: an error on the server ("Internal Server Error") has prevented the request '
     "from succeeding (post deployments.apps)", ClusterUnavailable),
    ('Error: INSTALLATION FAILED: unable to build kubernetes objects from release manifest: Get '
     '"https://127.0.0.1:6443/openapi/v2?timeout=32s": dial tcp 127.0.0.1:6443: connect: connection refused',
     ClusterUnavailable),
    ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress", ReleaseBusy),
    ("Error: execution error at (service/templates/deployment.yaml:41:20): image.digest is required", ChartError),
    ("Error: values don't meet the specifications of the schema(s) in the following chart(s):\nservice:\n"
     "- at '': additional properties 'replicas' not allowed", ChartError),
    ('Error: parse error at (service/templates/deployment.yaml:3): unexpected "}" in operand', ChartError),
    ('Error: INSTALLATION FAILED: Deployment.apps "cart" is invalid: spec.template.spec.containers[0].image: '
     "Required value", ChartError),
    ('Error: UPGRADE FAILED: unable to build kubernetes objects from release manifest: error validating "": '
     'error validating data: ValidationError(Deployment.spec): unknown field "replica"', ChartError),
    ("Error: release: not found", NotFound),
    ('Error: INSTALLATION FAILED: namespaces "shop-dev" is forbidden: User "ci" cannot create resource '
     '"namespaces"', TerminalError),
    ("Error: INSTALLATION FAILED: cannot re-use a name that is still in use", TerminalError),
    ("Error: Kubernetes cluster unreachable: stat /home/x/kubeconfig: no such file or directory", TerminalError),
])
def test_helm_errors_are_classified(stderr: str, expected: type[Exception]) -> None:
    error = classify_helm_error(stderr, "helm upgrade --install cart in shop-dev")
    assert type(error) is expected
    assert str(error).startswith("helm upgrade --install cart in shop-dev: ")
    assert stderr.removeprefix("Error: ") in str(error)


def test_a_wait_that_runs_out_of_time_is_not_a_cluster_fault() -> None:
    # Real stderr of `helm upgrade --wait --timeout 15s` whose new pod could not be scheduled.
    timed_out = "Error: UPGRADE FAILED: context deadline exceeded"
    assert type(classify_helm_error(timed_out, "helm upgrade", waited=True)) is ReleaseNotReady
    assert type(classify_helm_error(timed_out, "helm upgrade", waited=False)) is ClusterUnavailable
    lost = 'Error: UPGRADE FAILED: Get "https://127.0.0.1:6443/apis": dial tcp: connect: connection refused: ' \
           "context deadline exceeded"
    assert type(classify_helm_error(lost, "helm upgrade", waited=True)) is ClusterUnavailable


def test_retryable_means_cluster_or_lock_only() -> None:
    assert issubclass(ClusterUnavailable, RetryableError) and issubclass(ReleaseBusy, RetryableError)
    assert issubclass(ChartError, TerminalError) and issubclass(ReleaseNotReady, TerminalError)


# -- real helm against an unreachable API server -----------------------------------------------
def test_unreachable_cluster_is_retryable(real_helm: str, unreachable_kubeconfig: Path) -> None:
    helm = Helm(unreachable_kubeconfig, binary=real_helm)
    calls = [lambda: helm.status("cart", "shop-dev"), lambda: helm.history("cart", "shop-dev"),
             lambda: helm.list_releases(), lambda: helm.uninstall("cart", "shop-dev"),
             lambda: helm.upgrade_install("cart", CHART, "shop-dev",
                                          {"image": {"repository": "r.local/cart", "digest": DIGEST}})]
    for call in calls:
        with pytest.raises(ClusterUnavailable, match="connection refused") as caught:
            call()
        assert TOKEN not in str(caught.value)


def test_missing_kubeconfig_is_terminal(real_helm: str, tmp_path: Path) -> None:
    helm = Helm(tmp_path / "no-such-kubeconfig", binary=real_helm)
    with pytest.raises(TerminalError, match="no such file") as caught:
        helm.status("cart", "shop-dev")
    assert not isinstance(caught.value, RetryableError)


def test_a_malformed_timeout_fails_before_helm_runs(real_helm: str, unreachable_kubeconfig: Path) -> None:
    helm = Helm(unreachable_kubeconfig, binary=real_helm)
    with pytest.raises(TerminalError, match="not a duration"):
        helm.upgrade_install("cart", CHART, "shop-dev", {}, timeout="five minutes")


# -- values travel in a private file, never in argv --------------------------------------------
@pytest.fixture
def recording_helm(real_helm: str, tmp_path: Path) -> tuple[Path, Path]:
    """The real helm behind a shell shim that records its argv and the values file's mode."""
    argv_log, mode_log = tmp_path / "argv.log", tmp_path / "mode.log"
    shim = tmp_path / "helm"
    shim.write_text(f"""#!/bin/sh
printf '%s\\n' "$@" >> '{argv_log}'
prev=""
for arg in "$@"; do
  [ "$prev" = "--values" ] && stat -c %a "$arg" >> '{mode_log}'
  prev=$arg
done
exec '{real_helm}' "$@"
""")
    shim.chmod(0o755)
    return shim, argv_log


def test_values_never_appear_on_the_command_line(recording_helm: tuple[Path, Path], tmp_path: Path,
                                                 unreachable_kubeconfig: Path) -> None:
    shim, argv_log = recording_helm
    helm = Helm(unreachable_kubeconfig, binary=str(shim))
    marker = "value-only-in-the-file-7731"
    vals = {"image": {"repository": "r.local/cart", "digest": DIGEST}, "env": [{"name": "MARK", "value": marker}]}

    assert marker in helm.template("cart", CHART, "shop-dev", vals)  # the value did reach Helm
    with pytest.raises(ClusterUnavailable):
        helm.upgrade_install("cart", CHART, "shop-dev", vals)

    argv = argv_log.read_text().splitlines()
    assert marker not in argv_log.read_text()
    assert not any(a.startswith("--set") for a in argv)
    assert argv.count("--kubeconfig") == 2 and str(unreachable_kubeconfig) in argv
    values_files = [argv[i + 1] for i, a in enumerate(argv) if a == "--values"]
    assert len(values_files) == 2 and not any(os.path.exists(f) for f in values_files)  # removed afterwards
    assert (tmp_path / "mode.log").read_text().split() == ["600", "600"]


def test_release_chart_version() -> None:
    release = HelmRelease("cart", "shop-dev", 3, "deployed", "my-service-chart-0.10.2-rc.1", "1.0")
    assert release.chart_version == "0.10.2-rc.1"


# -- Kubernetes: rollout logic on constructed status data --------------------------------------
def status(**changes: object) -> DeploymentStatus:
    fields: dict[str, object] = dict(namespace="shop-dev", name="cart", generation=2, observed_generation=2,
                                     desired=2, replicas=2, updated=2, ready=2, available=2)
    fields.update(changes)
    return DeploymentStatus(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes, complete", [
    ({}, True),
    ({"observed_generation": 1}, False),  # the controller has not seen the new spec yet
    ({"updated": 1}, False),
    ({"ready": 1}, False),
    ({"available": 1}, False),
    ({"replicas": 3}, False),  # an old pod is still running
    ({"desired": 0, "replicas": 0, "updated": 0, "ready": 0, "available": 0}, True),
])
def test_rollout_complete(changes: dict[str, int], complete: bool) -> None:
    assert status(**changes).complete is complete


def test_progress_deadline_counts_only_for_the_observed_spec() -> None:
    stuck = (DeploymentCondition("Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet timed out"),)
    assert status(updated=1, conditions=stuck).progress_deadline_exceeded
    assert not status(updated=1, observed_generation=1, conditions=stuck).progress_deadline_exceeded
    fine = (DeploymentCondition("Progressing", "True", "NewReplicaSetAvailable"),)
    assert not status(conditions=fine).progress_deadline_exceeded


def test_status_from_an_api_object() -> None:
    deployment = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="cart", namespace="shop-dev", generation=5),
        spec=k8s.V1DeploymentSpec(
            replicas=None, selector=k8s.V1LabelSelector(match_labels={"a": "b"}),
            template=k8s.V1PodTemplateSpec(spec=k8s.V1PodSpec(containers=[
                k8s.V1Container(name="cart", image=f"r.local/cart@{DIGEST}")]))),
        status=k8s.V1DeploymentStatus(observed_generation=5, replicas=1, updated_replicas=1, ready_replicas=1,
                                      available_replicas=None, conditions=[k8s.V1DeploymentCondition(
                                          type="Available", status="False", reason="MinimumReplicasUnavailable")]))
    got = DeploymentStatus.from_api(deployment)
    assert (got.desired, got.replicas, got.updated, got.ready, got.available) == (1, 1, 1, 1, 0)
    assert got.images == (f"r.local/cart@{DIGEST}",)
    assert got.condition("Available") == DeploymentCondition("Available", "False", "MinimumReplicasUnavailable")
    assert not got.complete


@pytest.mark.parametrize("code, expected", [
    (404, NotFound), (409, TerminalError), (403, TerminalError), (422, TerminalError),
    (429, ClusterUnavailable), (500, ClusterUnavailable), (503, ClusterUnavailable),
])
def test_api_status_codes_are_translated(code: int, expected: type[Exception]) -> None:
    exc = ApiException(status=code, reason="Reason")
    exc.body = '{"kind":"Status","message":"deployments.apps \\"cart\\" is the message"}'
    error = _from_api_exception(exc, "deployment shop-dev/cart")
    assert type(error) is expected
    assert '"cart" is the message' in str(error)


def test_kube_unreachable_is_retryable(unreachable_kubeconfig: Path) -> None:
    with Kube(unreachable_kubeconfig, request_timeout=2) as kube:
        for call in (lambda: kube.namespace_exists("shop-dev"), lambda: kube.ensure_namespace("shop-dev"),
                     lambda: kube.deployment_status("shop-dev", "cart"), lambda: kube.get_secret_names("shop-dev")):
            with pytest.raises(ClusterUnavailable, match="Connection refused") as caught:
                call()
            assert TOKEN not in str(caught.value)


def test_wait_for_rollout_tolerates_api_errors_until_the_deadline(unreachable_kubeconfig: Path) -> None:
    with Kube(unreachable_kubeconfig, request_timeout=2) as kube:
        started = time.monotonic()
        with pytest.raises(RolloutTimeout) as caught:
            kube.wait_for_rollout("shop-dev", "cart", timeout=1.5, interval=0.2)
        elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 5
    assert isinstance(caught.value.last_error, ClusterUnavailable)
    assert caught.value.status is None and "never seen" in str(caught.value)


def test_unreadable_kubeconfig_is_terminal(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("just: [text")
    for path in (tmp_path / "kubeconfig", tmp_path / "missing"):
        with pytest.raises(TerminalError, match="cannot load kubeconfig"):
            Kube(path)


def test_values_file_mode_helper_is_private(tmp_path: Path) -> None:
    # A values file made by the adapter is readable by its owner only, even under a lax umask.
    from stageflow.adapters.helm import _write_values

    old = os.umask(0)
    try:
        path = Path(_write_values(tmp_path, {"a": 1}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == {"a": 1}
