"""Step ``release:rollback``: undo a Prod release whose rollout or verification failed.

1. Helm goes back to the revision that ran before (or the release is uninstalled when this was the
   service's first Prod release), and the previous pods are waited for.
2. The release pull request's merge is reverted in the infrastructure repo (a revert pull request,
   merged at once), so the repo and the cluster agree on the previous version again.

Both halves adopt what an earlier attempt did: a Helm release already at the previous image is
left alone, and ``revert_pull_request`` adopts an existing revert.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.forge.base import Forge
from stageflow.adapters.helm import Helm
from stageflow.adapters.kube import Kube

KIND = "release:rollback"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    infra_repo: str
    namespace: str
    release: str
    previous_revision: int | None = Field(description="the Helm revision before the failed upgrade; None: none")
    previous_image: str | None = Field(description="repository@digest that ran before; None: nothing ran")
    pull_request: int = Field(description="the merged release pull request to revert")
    timeout_seconds: float = Field(180, gt=0)


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    helm_revision: int | None = Field(description="the revision Helm rolled back to (a new revision number)")
    revert_commit: str
    revert_pull_request: int
    restored: str = Field(description="what Prod runs now, in words")


def run(config: Config, forge: Forge, helm: Helm, kube: Kube) -> Result:
    revision: int | None = None
    if config.previous_revision is None:
        helm.uninstall(config.release, config.namespace)
        restored = "nothing (this was the first prod release; the Helm release was uninstalled)"
    else:
        current = kube.deployment_status(config.namespace, config.release)
        status = helm.status(config.release, config.namespace)
        if current is not None and current.images == (config.previous_image,) and status is not None:
            revision = status.revision  # an earlier attempt already rolled back
        else:
            revision = helm.rollback(config.release, config.namespace, config.previous_revision).revision
        kube.wait_for_rollout(config.namespace, config.release, timeout=config.timeout_seconds)
        restored = f"{config.previous_image} (Helm revision {config.previous_revision}, now revision {revision})"
    revert, _ = forge.revert_pull_request(config.infra_repo, config.pull_request)
    merged = forge.merge_pull_request(config.infra_repo, revert.number)
    return Result(helm_revision=revision, revert_commit=merged.merge_commit or "",
                  revert_pull_request=merged.number, restored=restored)
