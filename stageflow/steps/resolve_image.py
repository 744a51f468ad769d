"""Step ``image:resolve``: turn an image tag (the commit sha CI pushed) into its digest.

A CI push may still be landing when the flow starts, so a missing tag is polled for up to
``wait_seconds``; after that it is a terminal ``ImageNotFound``.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.registry import Registry, parse, wait_for_tag
from stageflow.errors import Problem, ValidationFailed

KIND = "image:resolve"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    image: str = Field(description="image repository without tag, e.g. 127.0.0.1:5000/shop/orders")
    tag: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    digest: str | None = Field(None, pattern=r"^sha256:[a-f0-9]{64}$", description="given: only check it exists")
    wait_seconds: float = Field(60, gt=0)
    poll_seconds: float = Field(1.0, gt=0)


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    repository: str
    tag: str | None
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def run(config: Config, registry: Registry | None = None) -> Result:
    address, path = parse(config.image)
    registry = registry or Registry(address)
    # A digest names the image already; waiting on it covers the same "push still landing" case.
    reference = config.digest or config.tag
    if reference is None:
        raise ValidationFailed(Problem("image", "needs a tag or a digest"))
    digest = wait_for_tag(registry, path, reference, timeout=config.wait_seconds, interval=config.poll_seconds)
    return Result(repository=config.image, tag=config.tag, digest=digest)
