"""Step ``gitops:open-release-pr``: the pull request that sets a service's Prod version.

The branch ``release/<service>-<digest12>`` holds one commit on top of ``main`` that writes
``apps/<app>/prod/<service>.yaml`` with the new digest (chart and values as Prod has them). An
open pull request from an earlier attempt, or from another release of the same digest, is adopted.

When Prod already runs the digest nothing is opened (``Result.pull_request`` is None): the flow
then only makes sure the cluster matches, which is how a run that died after merging converges.
"""
from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.forge.base import Forge, PullRequest
from stageflow.gitops import InfraRepo
from stageflow.gitops.trailers import message_with_trailers
from stageflow.spec import DeployedVersion, ImageRef, SourceRef, load_spec, to_yaml, version_path
from stageflow.steps.write_version import TRAILER_DIGEST, TRAILER_RUN, TRAILER_SOURCE, TRAILER_TARGET

KIND = "gitops:open-release-pr"

STAGE = "prod"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    infra_repo: str = Field(description="the infrastructure repository's name on the forge")
    app: str
    service: str
    image: str
    digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$")
    version: str = Field(description="what people call it: the release tag, or the digest")
    tag: str | None = None
    source_commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,40}$")
    flow_run_id: str
    requested_by: str
    kind: str = "release"


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    branch: str
    pull_request: PullRequest | None
    created: bool
    previous: DeployedVersion | None
    proposed: DeployedVersion
    previous_text: str | None = Field(description="the Prod file on main when the PR was prepared")
    proposed_text: str
    diff: str


def release_branch(service: str, digest: str) -> str:
    return f"release/{service}-{digest.removeprefix('sha256:')[:12]}"


def run(config: Config, forge: Forge, infra: InfraRepo) -> Result:
    checkout = infra.sync()
    spec = load_spec(checkout)
    spec.service(config.app, config.service)
    current = spec.version(config.app, config.service, STAGE)
    proposed = DeployedVersion(
        app=config.app, service=config.service, stage=STAGE,
        image=ImageRef(repository=config.image, digest=config.digest, tag=config.tag),
        chart=current.chart if current else spec.platform.chart,
        values=current.values if current else {},
        source=SourceRef(commit=config.source_commit) if config.source_commit else None)
    path = version_path(config.app, config.service, STAGE)
    previous_text = infra.show_file(path)
    proposed_text = to_yaml(proposed)
    diff = "".join(difflib.unified_diff((previous_text or "").splitlines(keepends=True),
                                        proposed_text.splitlines(keepends=True), f"a/{path}", f"b/{path}"))
    branch = release_branch(config.service, config.digest)
    earlier = forge.find_pull_request(config.infra_repo, branch, "main", "all")
    if earlier is not None and earlier.state != "open":
        # That branch already served a release that was merged or closed: start a fresh one.
        branch = f"{branch}-{config.flow_run_id[:8]}"
    if current is not None and current.image.digest == config.digest:
        return Result(path=path, branch=branch, pull_request=None, created=False, previous=current,
                      proposed=current, previous_text=previous_text, proposed_text=previous_text or proposed_text,
                      diff="")
    pr, created = open_on_main(forge, config, branch, path, proposed_text)
    return Result(path=path, branch=branch, pull_request=pr, created=created, previous=current, proposed=proposed,
                  previous_text=previous_text, proposed_text=proposed_text, diff=diff)


def open_on_main(forge: Forge, config: Config, branch: str, path: str, text: str) -> tuple[PullRequest, bool]:
    """Commit ``text`` to ``branch`` (started from main; no commit if it already says so) and open
    the pull request, adopting an open one."""
    existing = forge.find_pull_request(config.infra_repo, branch, "main", "open")
    if existing is not None:
        return existing, False
    short = config.digest.removeprefix("sha256:")[:12]
    title = f"{config.app}/{config.service}: prod -> {config.version}"
    trailers = {TRAILER_TARGET: f"{config.app}/{config.service}/{STAGE}", TRAILER_DIGEST: config.digest,
                TRAILER_RUN: config.flow_run_id}
    if config.source_commit:
        trailers[TRAILER_SOURCE] = config.source_commit
    forge.commit_files(config.infra_repo, {path: text}, message_with_trailers(f"{title} ({short})", trailers),
                       branch=branch, base="main")
    body = (f"{config.kind.capitalize()} of `{config.app}/{config.service}` to prod, requested by "
            f"{config.requested_by}.\n\nImage `{config.image}@{config.digest}`.\n\n"
            f"Stageflow merges this pull request once an approver approves flow run `{config.flow_run_id}`.")
    return forge.open_pull_request(config.infra_repo, branch, "main", title, body)
