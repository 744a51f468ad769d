"""Test-stage databases on the embedded platform: db:provision-test and db:deprovision-test against
the real API server, controllers and Helm (kwok plays the kubelet, so pods become Ready without
running a database; volume claims bind through the host-path test provisioner)."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from pydantic import SecretStr

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube, StatefulSetTimeout
from stageflow.errors import ValidationFailed
from stageflow.spec import ChartRef, Database, DeployedVersion, ImageRef, Service
from stageflow.steps import deprovision_test_database as deprovision
from stageflow.steps import helm_deploy
from stageflow.steps import provision_test_database as provision

pytestmark = pytest.mark.integration

SECRET_KEYS = ["database", "host", "password", "port", "url", "username"]
SCHEMES = {"postgres": "postgresql://", "mongodb": "mongodb://"}
PORTS = {"postgres": 5432, "mongodb": 27017}
# kwok runs no containers: any well-formed digest will do for the service that uses the database.
DIGEST = "sha256:" + "db" * 32


@pytest.fixture
def app(settings) -> Iterator[str]:
    """A throwaway app; its test namespace is deleted afterwards with everything in it."""
    name = f"dbt-{uuid.uuid4().hex[:8]}"
    yield name
    core = client.CoreV1Api(config.new_client_from_config(str(settings.kubeconfig)))
    try:
        core.delete_namespace(f"{name}-test")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def helm(settings) -> Helm:
    return Helm(settings.kubeconfig)


@pytest.fixture
def kube(settings) -> Iterator[Kube]:
    with Kube(settings.kubeconfig) as kube:
        yield kube


@pytest.fixture
def api(settings) -> client.ApiClient:
    return config.new_client_from_config(str(settings.kubeconfig))


def eventually(check: Callable[[], Any], *, within: float = 60.0) -> Any:
    """Poll until ``check`` returns something truthy; the last value is returned either way."""
    deadline = time.monotonic() + within
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


@pytest.mark.parametrize("engine", ["postgres", "mongodb"])
def test_provision_rerun_use_and_deprovision(settings, app, helm, kube, api, engine):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns, release = f"{app}-test", "orders-db"
    cfg = provision.Config(app=app, service="orders", engine=engine, chart=settings.databases.test_chart)

    started = time.monotonic()
    first = provision.run(cfg, helm, kube)
    print(f"[{engine}] provisioned in {time.monotonic() - started:.1f}s")
    assert (first.release, first.namespace, first.secret) == (release, ns, release)
    assert (first.host, first.port) == (f"orders-db.{ns}.svc.cluster.local", PORTS[engine])
    assert (first.database, first.secret_created, first.helm_changed, first.ready) == ("orders", True, True, 1)

    # The StatefulSet's pod runs on a simulated node with its claim bound to a provisioned volume.
    sts = apps.read_namespaced_stateful_set(release, ns)
    assert (sts.spec.replicas, sts.status.ready_replicas) == (1, 1)
    (pod,) = core.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={release}").items
    assert pod.spec.node_name.startswith("kwok-node-")
    (claim,) = core.list_namespaced_persistent_volume_claim(
        ns, label_selector=deprovision.claims_selector(release)).items
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "standard"
    volume = claim.spec.volume_name
    service = core.read_namespaced_service(release, ns)
    assert (service.spec.type, service.spec.ports[0].port) == ("ClusterIP", PORTS[engine])

    # The Secret holds everything a service needs; the password is nowhere else.
    assert kube.secret_keys(ns, release) == SECRET_KEYS
    secret = kube.read_secret(ns, release)
    password = secret["password"].get_secret_value()
    assert len(password) >= 32
    assert secret["url"].get_secret_value().startswith(SCHEMES[engine] + f"orders:{password}@{first.host}:")
    assert secret["username"].get_secret_value() == "orders"
    assert password not in json.dumps(helm.get_values(release, ns))
    assert password not in json.dumps(api.sanitize_for_serialization(sts))
    assert password not in repr(first) and password not in first.model_dump_json()
    assert password not in repr(secret)
    version = core.read_namespaced_secret(release, ns).metadata.resource_version

    # A re-run changes nothing: same Helm revision, the Secret untouched.
    started = time.monotonic()
    again = provision.run(cfg, helm, kube)
    print(f"[{engine}] re-run in {time.monotonic() - started:.1f}s")
    assert (again.secret_created, again.helm_changed, again.helm_revision) == (False, False, first.helm_revision)
    assert len(helm.history(release, ns)) == 1
    assert core.read_namespaced_secret(release, ns).metadata.resource_version == version
    assert kube.read_secret(ns, release)["password"].get_secret_value() == password

    # A service deployed with its Database spec gets the Secret as environment.
    deployed = helm_deploy.run(helm_deploy.Config(
        service=Service(name="orders", app=app, repository=f"{app}-orders", image=f"registry.local:5000/{app}/orders"),
        version=DeployedVersion(app=app, service="orders", stage="test", chart=ChartRef(),
                                image=ImageRef(repository=f"registry.local:5000/{app}/orders", digest=DIGEST)),
        chart=settings.chart,
        database=Database(app=app, service="orders", stage="test", engine=engine, provider="helm", instance=release,
                          host=first.host, port=first.port, credentials=f"kubernetes:{ns}/{release}"),
    ), helm, kube)
    assert deployed.changed
    (main,) = apps.read_namespaced_deployment("orders", ns).spec.template.spec.containers
    assert [(source.secret_ref.name if source.secret_ref else None) for source in main.env_from] == [release]

    # Deprovisioning removes the release, the Secret and the claim (and with it the volume).
    started = time.monotonic()
    gone = deprovision.run(deprovision.Config(app=app, service="orders"), helm, kube)
    print(f"[{engine}] deprovisioned in {time.monotonic() - started:.1f}s")
    assert (gone.release_removed, gone.secret_deleted, gone.claims_deleted) == (True, True, 1)
    assert helm.status(release, ns) is None
    assert kube.secret_keys(ns, release) is None
    assert kube.list_pvcs(ns) == []
    assert eventually(lambda: not [pv for pv in core.list_persistent_volume().items if pv.metadata.name == volume])
    # The service itself is left alone.
    assert helm.status("orders", ns) is not None

    twice = deprovision.run(deprovision.Config(app=app, service="orders"), helm, kube)
    assert (twice.release_removed, twice.secret_deleted, twice.claims_deleted) == (False, False, 0)


def test_an_adopted_secret_is_never_rewritten(settings, app, helm, kube):
    ns = f"{app}-test"
    kube.ensure_namespace(ns)
    kube.ensure_secret(ns, "broken-db", {"password": SecretStr("kept-as-it-is")})
    cfg = provision.Config(app=app, service="broken", engine="postgres", chart=settings.databases.test_chart)
    with pytest.raises(ValidationFailed, match="lacks the keys username, database") as caught:
        provision.run(cfg, helm, kube)
    assert "kept-as-it-is" not in str(caught.value)
    assert kube.secret_keys(ns, "broken-db") == ["password"]
    assert helm.status("broken-db", ns) is None


def test_a_database_that_never_gets_ready_times_out(settings, app, helm, kube, api):
    # kwok's fault hook (stageflow/local/kwok/stages.yaml) never readies pods with this label.
    cfg = provision.Config(app=app, service="stuck", engine="mongodb", chart=settings.databases.test_chart,
                           values={"labels": {"app.kubernetes.io/version": "never-ready"}}, timeout_seconds=4)
    with pytest.raises(StatefulSetTimeout, match=r"stuck-db not ready after 4s: .*0/1 ready"):
        provision.run(cfg, helm, kube)
    # Deprovisioning works on a database that never came up, and its volume is released too.
    volumes = {pv.metadata.name for pv in client.CoreV1Api(api).list_persistent_volume().items
               if pv.spec.claim_ref and pv.spec.claim_ref.namespace == f"{app}-test"}
    gone = deprovision.run(deprovision.Config(app=app, service="stuck"), helm, kube)
    assert (gone.release_removed, gone.secret_deleted, gone.claims_deleted) == (True, True, len(volumes))
    assert eventually(lambda: not volumes & {pv.metadata.name
                                             for pv in client.CoreV1Api(api).list_persistent_volume().items})


def test_reserved_values_are_refused(settings, app, helm, kube):
    cfg = provision.Config(app=app, service="orders", engine="postgres", chart=settings.databases.test_chart,
                           values={"auth": {"existingSecret": "someone-elses"}})
    with pytest.raises(ValidationFailed, match="values.auth: is set by the step itself"):
        provision.run(cfg, helm, kube)
    assert not kube.namespace_exists(f"{app}-test")


def test_secret_helpers(app, kube):
    ns = f"{app}-test"
    kube.ensure_namespace(ns)
    first = {"password": SecretStr("one"), "username": SecretStr("u")}
    assert kube.secret_keys(ns, "creds") is None and kube.read_secret(ns, "creds") is None
    assert kube.ensure_secret(ns, "creds", first, {"team": "a"}) is True
    assert kube.ensure_secret(ns, "creds", {"password": SecretStr("two")}) is False  # adopted, not touched
    assert kube.ensure_secret(ns, "creds", first, {"team": "a"}, replace=True) is False  # same content
    assert {k: v.get_secret_value() for k, v in kube.read_secret(ns, "creds").items()} == {"password": "one",
                                                                                           "username": "u"}
    assert kube.ensure_secret(ns, "creds", {"password": SecretStr("two")}, replace=True) is True
    assert {k: v.get_secret_value() for k, v in kube.read_secret(ns, "creds").items()} == {"password": "two"}
    assert kube.delete_secret(ns, "creds") is True
    assert kube.delete_secret(ns, "creds") is False
    assert kube.delete_pvcs(ns, "app.kubernetes.io/instance=nothing") == 0
    # A refused write names the Secret but never echoes what was sent.
    from stageflow.errors import TerminalError

    with pytest.raises(TerminalError) as caught:
        kube.ensure_secret(ns, "creds", {"bad key!": SecretStr("s3cret-value")})
    assert "s3cret-value" not in str(caught.value) and "creds" in str(caught.value)
    assert "s3cret-value" not in repr(caught.value.__cause__)
