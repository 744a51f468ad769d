"""Step ``kube:verify-rollout``: wait until the Deployment has rolled out, then check it runs
exactly the digest that was asked for with every replica Ready."""
from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.kube import DeploymentStatus, Kube
from stageflow.errors import TerminalError

KIND = "kube:verify-rollout"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str
    deployment: str
    image: str = Field(description="repository@sha256:... the pods must run")
    timeout_seconds: float = Field(180, gt=0)


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    ready: int
    desired: int
    image: str


class VerificationFailed(TerminalError):
    """The rollout finished but does not run what was asked for."""


def run(config: Config, kube: Kube, on_progress: Callable[[DeploymentStatus], None] | None = None) -> Result:
    status = kube.wait_for_rollout(config.namespace, config.deployment, timeout=config.timeout_seconds,
                                   on_progress=on_progress)
    images = list(status.images)
    if config.image not in images:
        raise VerificationFailed(
            f"deployment {config.namespace}/{config.deployment} runs {', '.join(images) or 'no image'}, "
            f"expected {config.image}")
    return Result(ready=status.ready, desired=status.desired, image=config.image)
