"""Step ``db:deprovision-test``: remove a service's test database and everything it left behind.

Uninstalls the Helm release ``<service>-db`` from ``<app>-test``, deletes its Secret and the
StatefulSet's volume claims (Helm never deletes those, by design of StatefulSets), then waits
until the claims are really gone: a claim stays until its pod has stopped. Every part is skipped
when already gone, so running the step twice is a no-op the second time.
"""
from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube
from stageflow.errors import TerminalError
from stageflow.spec import namespace
from stageflow.spec.models import AppName, ServiceName
from stageflow.steps.provision_test_database import STAGE, release_name

__all__ = ["KIND", "Config", "Result", "run", "claims_selector"]

KIND = "db:deprovision-test"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: AppName
    service: ServiceName
    timeout_seconds: float = Field(120, gt=0)


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    release: str
    namespace: str
    release_removed: bool
    secret_deleted: bool
    claims_deleted: int


def claims_selector(release: str) -> str:
    """The labels charts/database puts on its volume claims (the StatefulSet's selector labels)."""
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/component=database"


def run(config: Config, helm: Helm, kube: Kube) -> Result:
    ns = namespace(config.app, STAGE)
    release = release_name(config.service)
    removed = helm.uninstall(release, ns)
    secret_deleted = kube.delete_secret(ns, release)
    selector = claims_selector(release)
    claims = kube.delete_pvcs(ns, selector)
    _wait_until_claims_gone(kube, ns, selector, config.timeout_seconds)
    return Result(release=release, namespace=ns, release_removed=removed, secret_deleted=secret_deleted,
                  claims_deleted=claims)


def _wait_until_claims_gone(kube: Kube, ns: str, selector: str, timeout: float) -> None:
    # The claim protection finalizer holds a claim until no pod uses it; "deprovisioned" must mean
    # the data is gone, or a quick re-provision would adopt the old volume.
    deadline = time.monotonic() + timeout
    pause = 0.2
    while left := kube.list_pvcs(ns, selector):
        if time.monotonic() >= deadline:
            raise TerminalError(f"volume claims {', '.join(name for name, _ in left)} in {ns} still exist "
                                f"{timeout:.0f}s after they were deleted")
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
