"""Step ``gitops:write-version``: record the version a stage should run in the infrastructure repo.

Writes ``apps/<app>/<stage>/<service>.yaml`` on ``main`` with trailers that link the commit back
to the flow run, the source commit and the image digest. Values already in the file (overrides a
person made) are kept. Writing what is already there makes no commit, so a re-run is a no-op.
An optional ``check`` sees the new version before it is committed (the flow renders the chart
with it), so a version that cannot deploy never reaches the repository.
"""
from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from stageflow.gitops import InfraRepo
from stageflow.spec import DeployedVersion, ImageRef, Service, SourceRef, Stage, load_spec, to_yaml, version_path

KIND = "gitops:write-version"

TRAILER_RUN = "Stageflow-Flow-Run"
TRAILER_SOURCE = "Stageflow-Source-Commit"
TRAILER_DIGEST = "Stageflow-Image-Digest"
TRAILER_TARGET = "Stageflow-Target"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    app: str
    service: str
    stage: Stage
    image: str
    digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$")
    tag: str | None = None
    source_commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,40}$")
    flow_run_id: str | None = None


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    commit: str | None = Field(description="the new infra commit, or None when the file already said this")
    head: str = Field(description="infra repo head after the step")
    previous_digest: str | None
    version: DeployedVersion


def run(config: Config, infra: InfraRepo, check: Callable[[Service, DeployedVersion], None] | None = None) -> Result:
    checkout = infra.sync()
    spec = load_spec(checkout)
    service = spec.service(config.app, config.service)  # NotFound names what exists
    current = spec.version(config.app, config.service, config.stage)
    version = DeployedVersion(
        app=config.app, service=config.service, stage=config.stage,
        image=ImageRef(repository=config.image, digest=config.digest, tag=_tag(config, current)),
        chart=current.chart if current else spec.platform.chart,
        values=current.values if current else {},
        source=SourceRef(commit=config.source_commit) if config.source_commit else (current.source if current else None),
    )
    if check is not None:
        check(service, version)
    path = version_path(config.app, config.service, config.stage)

    trailers = {TRAILER_TARGET: f"{config.app}/{config.service}/{config.stage}", TRAILER_DIGEST: config.digest}
    if config.source_commit:
        trailers[TRAILER_SOURCE] = config.source_commit
    if config.flow_run_id:
        trailers[TRAILER_RUN] = config.flow_run_id
    previous = current.image.digest if current else None
    short = config.digest.removeprefix("sha256:")[:12]
    message = f"{config.app}/{config.service}: {config.stage} -> {short}"
    commit = infra.commit_and_push({path: to_yaml(version)}, message, trailers)
    return Result(path=path, commit=commit, head=infra.head(), previous_digest=previous, version=version)


def _tag(config: Config, current: DeployedVersion | None) -> str | None:
    """The tag to record: the one given, else the recorded one when the digest is the same image
    (deploying an image by digest must not drop its tag and churn the release's labels)."""
    if config.tag is not None or current is None or current.image.digest != config.digest:
        return config.tag
    return current.image.tag
