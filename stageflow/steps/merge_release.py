"""Step ``gitops:merge-release``: merge an approved release pull request into ``main``.

Runs under the app's Prod lock. If Prod's file on ``main`` changed since the pull request was
prepared (another release of the service landed first), the pull request would conflict or undo
that release's record: it is closed and the approved change is re-opened on top of the current
``main``, then merged, so a release that waited its turn is not lost.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stageflow.adapters.forge.base import Forge, PullRequest
from stageflow.steps import open_release_pr

KIND = "gitops:merge-release"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    request: open_release_pr.Config
    number: int
    path: str
    previous_text: str | None
    proposed_text: str
    approver: str
    reason: str


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    pull_request: PullRequest
    merge_commit: str
    reopened: bool


def run(config: Config, forge: Forge) -> Result:
    repo = config.request.infra_repo
    pr = forge.get_pull_request(repo, config.number)
    reopened = False
    if pr is not None and pr.state != "merged":
        on_main = forge.read_file(repo, config.path, "main")
        if on_main != config.previous_text:
            forge.close_pull_request(repo, pr.number)
            branch = f"{open_release_pr.release_branch(config.request.service, config.request.digest)}-" \
                     f"{config.request.flow_run_id[:8]}"
            pr, _ = open_release_pr.open_on_main(forge, config.request, branch, config.path, config.proposed_text)
            reopened = True
    if pr is None:
        from stageflow.errors import NotFound

        raise NotFound(f"release pull request #{config.number} is gone from {repo!r}")
    message = (f"Merge pull request #{pr.number} from {pr.head}\n\n{pr.title}\n\n"
               f"Approved-by: {config.approver}\nStageflow-Flow-Run: {config.request.flow_run_id}\n")
    merged = forge.merge_pull_request(repo, pr.number, message)
    return Result(pull_request=merged, merge_commit=merged.merge_commit or "", reopened=reopened)
