"""build-to-test and sync-stage against the real embedded platform: Prefect server, local forge,
docker-registry, the Docker engine, kube-apiserver + kwok, Helm."""
from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, config

from flows.build_to_test import build_to_test
from flows.sync_stage import sync_stage
from stageflow.adapters.registry import ImageNotFound
from stageflow.errors import NotFound, ValidationFailed
from stageflow.spec import load_spec, version_path
from tests.integration.helpers import helm_revision, infra, infra_head, new_service, push_change

pytestmark = pytest.mark.integration


def deployment_image(settings, namespace: str, name: str) -> str:
    apps = client.AppsV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    return apps.read_namespaced_deployment(name, namespace).spec.template.spec.containers[0].image


@pytest.fixture(scope="module")
def shop(settings):
    """App `shop` with service `orders`, its first image pushed."""
    svc = new_service(settings, "shop", "orders")
    commit, digest = push_change(settings, svc, "orders v1")
    return svc, commit, digest


def test_rollout_pins_digest_records_infra_commit_and_publishes_artifact(settings, shop):
    svc, commit, digest = shop
    summary = build_to_test(app="shop", service="orders", commit=commit)

    assert summary.digest == digest and summary.ready == summary.desired == 1
    assert deployment_image(settings, "shop-test", "orders") == f"{svc.image}@{digest}"
    record = infra(settings).find_commit_with_trailers(**{"Stageflow-Image-Digest": digest})
    assert record is not None and record.sha == summary.infra_commit
    assert record.trailers["Stageflow-Source-Commit"] == commit
    assert record.trailers["Stageflow-Flow-Run"]  # links back to the flow run
    spec = load_spec(infra(settings).sync())
    assert spec.version("shop", "orders", "test").image.digest == digest

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        artifact = prefect.read_latest_artifacts(limit=50)
    keys = {a.key: a for a in artifact}
    assert digest in keys["rollout-test-shop-orders"].data
    assert "release-record-test-shop-orders" in keys


def test_rerun_with_same_commit_changes_nothing(settings, shop):
    _, commit, digest = shop
    build_to_test(app="shop", service="orders", commit=commit)
    head, revision = infra_head(settings), helm_revision(settings, "shop", "orders")

    again = build_to_test(app="shop", service="orders", commit=commit)

    assert again.infra_commit is None and not again.helm_changed
    assert infra_head(settings) == head
    assert helm_revision(settings, "shop", "orders") == revision


def test_new_commit_moves_digest_forward(settings, shop):
    svc, first_commit, first_digest = shop
    build_to_test(app="shop", service="orders", commit=first_commit)
    revision = helm_revision(settings, "shop", "orders")
    commit, digest = push_change(settings, svc, "orders v2")
    assert digest != first_digest

    summary = build_to_test(app="shop", service="orders", commit=commit)

    assert summary.previous_digest == first_digest and summary.digest == digest
    assert summary.helm_revision == revision + 1
    assert deployment_image(settings, "shop-test", "orders") == f"{svc.image}@{digest}"


# -- bad input: a clear error and no side effect ----------------------------------------------
@pytest.mark.parametrize("kwargs, field", [
    ({"app": "Shop", "service": "orders", "commit": "abcdef1"}, "app"),
    ({"app": "shop", "service": "or_ders", "commit": "abcdef1"}, "service"),
    ({"app": "shop", "service": "orders", "commit": "not-a-sha"}, "commit"),
    ({"app": "a" * 59, "service": "orders", "commit": "abcdef1"}, "app"),
    ({"app": "kube-system", "service": "orders", "commit": "abcdef1"}, "app"),
    ({"app": "shop", "service": "orders", "commit": "abcdef1", "image": "Bad Image!"}, "image"),
])
def test_invalid_input_is_refused_before_any_side_effect(settings, shop, kwargs, field):
    head = infra_head(settings)
    with pytest.raises(ValidationFailed) as err:
        build_to_test(**kwargs)
    assert any(p.field == field for p in err.value.problems), str(err.value)
    assert infra_head(settings) == head


@pytest.mark.parametrize("app, service, named", [("nosuchapp", "orders", "nosuchapp"), ("shop", "nosuchsvc", "nosuchsvc")])
def test_unknown_app_or_service_is_not_found(settings, shop, app, service, named):
    head = infra_head(settings)
    with pytest.raises(NotFound, match=named):
        build_to_test(app=app, service=service, commit="abcdef1")
    assert infra_head(settings) == head
    assert helm_revision(settings, app, service) is None


def test_missing_image_fails_after_bounded_wait_without_side_effects(settings):
    new_service(settings, "shop", "ghost")
    head = infra_head(settings)
    started = time.monotonic()
    with pytest.raises(ImageNotFound, match=r"shop/ghost:0000000"):
        build_to_test(app="shop", service="ghost", commit="0000000")
    assert time.monotonic() - started >= settings.timeouts.image_wait_seconds
    assert infra_head(settings) == head
    assert helm_revision(settings, "shop", "ghost") is None


def test_malformed_spec_file_is_named_and_nothing_deploys(settings, shop):
    _, commit, _ = shop
    repo = infra(settings, "breaker")
    repo.sync()
    bad = "apps/shop/services/broken.yaml"
    repo.commit_and_push({bad: "apiVersion: stageflow.dev/v1\nkind: Service\nname: broken\napp: shop\ncolour: red\n"},
                         "test: a malformed file")
    head, revision = infra_head(settings), helm_revision(settings, "shop", "orders")
    try:
        with pytest.raises(ValidationFailed, match=r"broken\.yaml") as err:
            build_to_test(app="shop", service="orders", commit=commit)
        assert "colour" in str(err.value)
        assert infra_head(settings) == head and helm_revision(settings, "shop", "orders") == revision
    finally:
        repo.sync()
        repo.commit_and_push({bad: None}, "test: remove the malformed file")


# -- faults: transient outages are retried, with no duplicate side effects -------------------
def _outage(stop, start, seconds: float) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        start()

    stop()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_registry_outage_is_retried(settings, embedded, shop):
    svc = shop[0]
    commit, digest = push_change(settings, svc, "orders during a registry outage")
    revision = helm_revision(settings, "shop", "orders")
    thread = _outage(embedded.registry.stop, embedded.registry.start, 7)

    summary = build_to_test(app="shop", service="orders", commit=commit)
    thread.join()

    assert summary.digest == digest and summary.helm_revision == revision + 1
    commits = [c for c in infra(settings).log() if c.trailers.get("Stageflow-Image-Digest") == digest]
    assert len(commits) == 1


def test_api_server_outage_is_retried(settings, embedded, shop):
    svc = shop[0]
    commit, digest = push_change(settings, svc, "orders during an API server outage")
    revision = helm_revision(settings, "shop", "orders")
    apiserver = embedded.kube.procs["kube-apiserver"]
    thread = _outage(apiserver.stop, lambda: embedded.kube.start(progress=lambda _: None), 6)

    summary = build_to_test(app="shop", service="orders", commit=commit)
    thread.join()

    assert summary.digest == digest and summary.helm_revision == revision + 1
    assert [r.revision for r in __import__("stageflow.adapters.helm", fromlist=["Helm"]).Helm(
        settings.kubeconfig).history("orders", "shop-test")][-1] == revision + 1
    commits = [c for c in infra(settings).log() if c.trailers.get("Stageflow-Image-Digest") == digest]
    assert len(commits) == 1
    assert deployment_image(settings, "shop-test", "orders") == f"{svc.image}@{digest}"


# -- sync-stage ----------------------------------------------------------------------------------
def test_sync_stage_applies_the_infra_repo_and_is_idempotent(settings, shop):
    svc, _, _ = shop
    other = new_service(settings, "shop", "payments")
    commit, digest = push_change(settings, other, "payments v1")
    from stageflow.spec import ChartRef, DeployedVersion, ImageRef, to_yaml

    repo = infra(settings, "gitops")
    repo.sync()
    version = DeployedVersion(app="shop", service="payments", stage="test",
                              image=ImageRef(repository=other.image, digest=digest, tag=commit), chart=ChartRef())
    repo.commit_and_push({version_path("shop", "payments", "test"): to_yaml(version)}, "payments to test by PR")

    result = sync_stage(app="shop", stage="test")

    assert "payments" in result.changed
    assert deployment_image(settings, "shop-test", "payments") == f"{other.image}@{digest}"
    again = sync_stage(app="shop", stage="test")
    assert again.changed == []


def test_rerun_recovers_a_helm_release_left_pending_by_a_dead_run(settings, shop):
    """A run killed in the middle of `helm upgrade` leaves the release pending-upgrade; the next run
    under the stage lock rolls it back and converges instead of failing forever."""
    import json
    import signal
    import subprocess

    from stageflow.adapters.helm import Helm, helm_binary

    svc, _, _ = shop
    summary = build_to_test(app="shop", service="orders", commit=shop[1])
    helm = Helm(settings.kubeconfig)
    values = helm.get_values("orders", "shop-test")
    values["resources"] = {"requests": {"cpu": "500"}, "limits": {"cpu": "500"}}  # fits no node: never Ready
    path = settings.workdir / "stuck-values.json"
    path.write_text(json.dumps(values))
    dying = subprocess.Popen([helm_binary(), "upgrade", "orders", str(settings.chart), "-n", "shop-test",
                              "-f", str(path), "--wait", "--timeout", "120s", "--kubeconfig", str(settings.kubeconfig)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (helm.status("orders", "shop-test").status != "pending-upgrade"):
            time.sleep(0.2)
        assert helm.status("orders", "shop-test").status == "pending-upgrade"
    finally:
        dying.send_signal(signal.SIGKILL)
        dying.wait()

    again = build_to_test(app="shop", service="orders", commit=shop[1])

    assert helm.status("orders", "shop-test").status == "deployed"
    assert again.ready == again.desired == 1 and again.digest == summary.digest
    assert deployment_image(settings, "shop-test", "orders") == f"{svc.image}@{summary.digest}"


def test_a_rollout_waits_while_another_holds_the_app_stage(settings, shop):
    """Rollouts to one app stage never interleave: while another rollout holds the stage lock, a
    CI job's build-to-test (a separate process, as GitHub Actions would start it) writes nothing and
    deploys nothing; it goes on once the lock is released."""
    import subprocess
    import sys

    from prefect.concurrency.sync import concurrency

    from flows.common import ensure_stage_lock

    svc = new_service(settings, "shop", "cart")
    commit, digest = push_change(settings, svc, "cart v1")
    head = infra_head(settings)
    with concurrency(ensure_stage_lock("shop", "test"), occupy=1, strict=True):
        job = subprocess.Popen([sys.executable, "-m", "stageflow.cli", "deploy", "shop", "cart", "--commit", commit],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        held_until = time.monotonic() + 15
        while time.monotonic() < held_until:
            assert infra_head(settings) == head, "the rollout wrote to the infra repo while the stage was locked"
            assert helm_revision(settings, "shop", "cart") is None, "the rollout deployed while the stage was locked"
            assert job.poll() is None, job.stdout.read()
            time.sleep(0.5)
    output = job.communicate(timeout=180)[0]

    assert job.returncode == 0, output
    assert "waiting for the shop-test stage lock" in output
    assert infra_head(settings) != head
    assert deployment_image(settings, "shop-test", "cart") == f"{svc.image}@{digest}"


def test_status_reports_digest_revision_readiness_and_drift(settings, shop):
    import json
    import subprocess
    import sys

    summary = build_to_test(app="shop", service="orders", commit=shop[1])
    done = subprocess.run([sys.executable, "-m", "stageflow.cli", "status", "--app", "shop", "--output", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert all(set(r) == {"app", "service", "stage", "digest", "helm_revision", "ready", "desired", "drift"}
               for r in rows)
    orders = next(r for r in rows if r["service"] == "orders" and r["stage"] == "test")
    assert orders == {"app": "shop", "service": "orders", "stage": "test", "digest": summary.digest,
                      "helm_revision": summary.helm_revision, "ready": 1, "desired": 1, "drift": False}

    # Someone edits the image in the cluster by hand: status says it drifted.
    apps = client.AppsV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    other = "sha256:" + "0" * 64
    apps.patch_namespaced_deployment("orders", "shop-test", {"spec": {"template": {"spec": {"containers": [
        {"name": "orders", "image": f"{shop[0].image}@{other}"}]}}}})
    try:
        table = subprocess.run([sys.executable, "-m", "stageflow.cli", "status", "--app", "shop"],
                               capture_output=True, text=True, timeout=120).stdout
        line = next(l for l in table.splitlines() if l.startswith("shop") and " orders " in l and " test " in l)
        assert "yes" in line and other[:19] in line, table
    finally:
        Helm = __import__("stageflow.adapters.helm", fromlist=["Helm"]).Helm
        Helm(settings.kubeconfig).rollback("orders", "shop-test", summary.helm_revision)


def _set_values(settings, app: str, service: str, values: dict) -> None:
    """A person edits the stage's values in the infra repo (as a merged PR would)."""
    from stageflow.spec import parse_file, to_yaml

    repo = infra(settings, "values")
    path = version_path(app, service, "test")
    current = parse_file(path, repo.show_file(path))
    repo.commit_and_push({path: to_yaml(current.model_copy(update={"values": values}))}, f"test: values of {service}")


def test_chart_render_error_fails_before_any_commit_or_deploy(settings, shop):
    from stageflow.adapters.helm import ChartError

    svc = shop[0]
    build_to_test(app="shop", service="orders", commit=shop[1])
    _set_values(settings, "shop", "orders", {"replicaCount": "two"})
    try:
        commit, _ = push_change(settings, svc, "orders with bad values")
        head, revision = infra_head(settings), helm_revision(settings, "shop", "orders")
        with pytest.raises(ChartError, match="replicaCount"):
            build_to_test(app="shop", service="orders", commit=commit)
        assert infra_head(settings) == head and helm_revision(settings, "shop", "orders") == revision
    finally:
        _set_values(settings, "shop", "orders", {})


def test_rollout_that_cannot_become_ready_is_a_terminal_failure(settings):
    """Pods that fit no node never get Ready: Kubernetes reports ProgressDeadlineExceeded and the flow
    fails with that, instead of waiting out its own timeout or retrying."""
    from stageflow.adapters.kube import RolloutFailed

    svc = new_service(settings, "shop", "heavy")
    commit, _ = push_change(settings, svc, "heavy v1")
    build_to_test(app="shop", service="heavy", commit=commit)
    _set_values(settings, "shop", "heavy", {"progressDeadlineSeconds": 3,
                                            "resources": {"requests": {"cpu": "500"}, "limits": {"cpu": "500"}}})
    commit, _ = push_change(settings, svc, "heavy v2")
    started = time.monotonic()
    with pytest.raises(RolloutFailed, match="ProgressDeadlineExceeded"):
        build_to_test(app="shop", service="heavy", commit=commit)
    assert time.monotonic() - started < settings.timeouts.rollout_seconds


def test_explicit_image_reference_by_tag_or_digest(settings, shop):
    svc = shop[0]
    commit, digest = push_change(settings, svc, "orders by explicit reference")
    by_tag = build_to_test(app="shop", service="orders", commit=commit, image=f"{svc.image}:{commit}")
    assert by_tag.digest == digest
    by_digest = build_to_test(app="shop", service="orders", commit=commit, image=f"{svc.image}@{digest}")
    assert by_digest.digest == digest and not by_digest.helm_changed  # same image: no new Helm revision
