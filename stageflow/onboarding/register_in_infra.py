"""Step ``onboarding:register-in-infra``: declare the service (and a new app) in the
infrastructure repository through a pull request.

The files go to the branch ``onboard/<app>-<service>``, a pull request into main is opened and,
by default (``auto_merge``), merged: a registration alone deploys nothing, and nothing reaches
prod without a release. No stage file is written: test gets one from the first build-to-test,
prod stays empty until the first release. A service that asked for a database has
``database: <kind>`` in its Service file: the request is recorded there until the database flow
exists.

Adopts: main already declaring the service is success without a PR; an open PR from the branch
is reused (its files are brought up to date); a branch without a PR (a run that died before
opening it, or an undone attempt) is started again from main.

``compensate`` undoes a registration this run made: an open PR is closed, a merged one is
reverted through a revert PR (history keeps both), and the branches are deleted.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stageflow.adapters.forge.base import Forge, PullRequest
from stageflow.spec import App, Service, app_path, service_path, to_yaml

KIND = "onboarding:register-in-infra"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    infra_repo: str
    service: Service
    new_app: App | None = Field(None, description="the App entry to create when the app is new")
    auto_merge: bool = True
    base: str = "main"

    @property
    def branch(self) -> str:
        return f"onboard/{self.service.app}-{self.service.name}"

    def files(self) -> dict[str, str]:
        files = {service_path(self.service.app, self.service.name): to_yaml(self.service)}
        if self.new_app is not None:
            files[app_path(self.new_app.name)] = to_yaml(self.new_app)
        return files


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    branch: str
    pr_number: int | None
    pr_url: str | None
    state: str = Field(description="'registered' (on main), 'open' (PR waits for a merge)")
    merge_commit: str | None
    pr_created: bool
    merged_now: bool


def run(config: Config, forge: Forge) -> Result:
    files = config.files()
    if _on_base(config, forge, files):
        merged = forge.find_pull_request(config.infra_repo, config.branch, config.base, "merged")
        return _result(config, merged, "registered", pr_created=False, merged_now=False)
    title = f"Onboard {config.service.app}/{config.service.name}"
    pr = forge.find_pull_request(config.infra_repo, config.branch, config.base, "open")
    created = False
    if pr is None:
        # A branch without an open PR is an older attempt's: start again from the current main.
        forge.delete_branch(config.infra_repo, config.branch)
        forge.commit_files(config.infra_repo, files, title, branch=config.branch, base=config.base)
        pr, created = forge.open_pull_request(config.infra_repo, config.branch, config.base, title, _body(config))
    else:
        forge.commit_files(config.infra_repo, files, f"{title} (update)", branch=config.branch)
    if not config.auto_merge:
        return _result(config, pr, "open", pr_created=created, merged_now=False)
    merged = forge.merge_pull_request(config.infra_repo, pr.number)
    return _result(config, merged, "registered", pr_created=created, merged_now=True)


def compensate(config: Config, forge: Forge) -> list[str]:
    """Undo the registration on the infra repo; what was done, in words. Safe to repeat."""
    done: list[str] = []
    repo, branch = config.infra_repo, config.branch
    if (pr := forge.find_pull_request(repo, branch, config.base, "open")) is not None:
        forge.close_pull_request(repo, pr.number)
        done.append(f"closed PR #{pr.number}")
    merged = forge.find_pull_request(repo, branch, config.base, "merged")
    if merged is not None and forge.read_file(repo, service_path(config.service.app, config.service.name),
                                               config.base) is not None:
        revert, _ = forge.revert_pull_request(repo, merged.number,
                                              title=f"Undo onboarding of {config.service.app}/{config.service.name}")
        forge.merge_pull_request(repo, revert.number)
        forge.delete_branch(repo, revert.head)
        done.append(f"reverted PR #{merged.number} with PR #{revert.number}")
    if forge.delete_branch(repo, branch):
        done.append(f"deleted branch {branch}")
    return done


def _on_base(config: Config, forge: Forge, files: dict[str, str]) -> bool:
    return all(forge.read_file(config.infra_repo, path, config.base) == text for path, text in files.items())


def _result(config: Config, pr: PullRequest | None, state: str, *, pr_created: bool, merged_now: bool) -> Result:
    return Result(branch=config.branch, pr_number=pr.number if pr else None, pr_url=pr.web_url if pr else None,
                  state=state, merge_commit=pr.merge_commit if pr else None, pr_created=pr_created,
                  merged_now=merged_now)


def _body(config: Config) -> str:
    svc = config.service
    lines = [f"Registers the service `{svc.app}/{svc.name}` (repository `{svc.repository}`, image `{svc.image}`, "
             f"port {svc.port}).", ""]
    if config.new_app is not None:
        lines.append(f"Creates the app `{svc.app}`: owners and approvers {', '.join(config.new_app.owners)}.")
    if svc.database != "none":
        lines.append(f"Requests a {svc.database} database per stage (`database: {svc.database}`).")
    lines.append("No stage file yet: test gets one from the first build-to-test, prod from the first release.")
    return "\n".join(lines) + "\n"


__all__ = ["KIND", "Config", "Result", "compensate", "run"]
