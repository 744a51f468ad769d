"""Step ``onboarding:update-template``: bring one service repository to the newest template version
through a pull request.

``copier update`` needs what onboarding recorded: ``.copier-answers.yml`` with ``_src_path`` (the
published template repository) and ``_commit`` (the version it was rendered from, still a tag
there). It runs in a scratch clone, on a branch named after the target version; the changed files
are committed through the Forge interface and proposed as a PR. Where the service changed a line
the template changed too, Copier writes both sides inline (``<<<<<<< before updating``): those
files are listed as conflicts in the PR body and in the result, never silently resolved.

Adopts: a repository already at the newest version is "current"; an open PR from the version's
branch is returned as it is (a re-run does not update twice).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict

from stageflow.adapters.forge.base import Forge
from stageflow.adapters.git import identity_env, run_git
from stageflow.errors import TerminalError
from stageflow.onboarding.request import ANSWERS_FILE

KIND = "onboarding:update-template"
CONFLICT_MARKER = "<<<<<<< before updating"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    repository: str
    base: str = "main"


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)
    repository: str
    state: str  # "current", "not-templated", "proposed" (PR open), "no-change"
    from_version: str | None = None
    to_version: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    pr_created: bool = False
    conflicts: list[str] = []


def branch_for(version: str) -> str:
    return f"template/update-{version}"


def newest_version(forge: Forge, template_repo: str) -> str:
    """The highest PEP 440 tag of the template repository."""
    versions = []
    for tag in forge.list_tags(template_repo):
        try:
            versions.append((Version(tag), tag))
        except InvalidVersion:
            continue  # tags that are not versions are not template releases
    if not versions:
        raise TerminalError(f"template repository {template_repo!r} has no version tags")
    return max(versions)[1]


def run(config: Config, forge: Forge) -> Result:
    answers_text = forge.read_file(config.repository, ANSWERS_FILE, config.base)
    if answers_text is None:
        return Result(repository=config.repository, state="not-templated")
    answers = yaml.safe_load(answers_text) or {}
    current, source = str(answers.get("_commit")), str(answers.get("_src_path", ""))
    template_repo = source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    target = newest_version(forge, template_repo)
    if Version(target) <= Version(current):
        return Result(repository=config.repository, state="current", from_version=current, to_version=current)
    branch = branch_for(target)
    if (pr := forge.find_pull_request(config.repository, branch, config.base, "open")) is not None:
        return Result(repository=config.repository, state="proposed", from_version=current, to_version=target,
                      pr_number=pr.number, pr_url=pr.web_url, conflicts=_conflicts_in(pr.body))
    changes, conflicts = _copier_update(forge, config, target)
    if not changes:
        return Result(repository=config.repository, state="no-change", from_version=current, to_version=target)
    forge.delete_branch(config.repository, branch)  # an older attempt's branch without a PR
    forge.commit_files(config.repository, changes, f"Update template {current} -> {target}", branch=branch,
                       base=config.base)
    pr, created = forge.open_pull_request(config.repository, branch, config.base,
                                          f"Update the service template to {target}",
                                          _body(current, target, conflicts))
    return Result(repository=config.repository, state="proposed", from_version=current, to_version=target,
                  pr_number=pr.number, pr_url=pr.web_url, pr_created=created, conflicts=conflicts)


def _copier_update(forge: Forge, config: Config, target: str) -> tuple[dict[str, str | None], list[str]]:
    """Run ``copier update`` in a scratch clone; (changed files, files with conflict markers)."""
    import copier

    with tempfile.TemporaryDirectory(prefix="stageflow-update-") as scratch:
        work = Path(scratch) / "repo"
        run_git(["clone", "--quiet", "--branch", config.base, forge.get_repo(config.repository).clone_url,
                 str(work)], None)
        try:
            copier.run_update(work, vcs_ref=target, defaults=True, overwrite=True, conflict="inline",
                              quiet=True, unsafe=False)
        except Exception as exc:  # noqa: BLE001 - copier raises many types; none is worth retrying
            raise TerminalError(f"copier update of {config.repository} to {target} failed: {exc}") from exc
        run_git(["add", "--all"], work, identity_env("stageflow", "stageflow@localhost"))
        changed = run_git(["diff", "--cached", "--name-status", "--no-renames"], work).splitlines()
        changes: dict[str, str | None] = {}
        for line in changed:
            status, path = line.split("\t", 1)
            changes[path] = None if status == "D" else (work / path).read_text()
        conflicts = sorted(path for path, text in changes.items() if text is not None and CONFLICT_MARKER in text)
        return changes, conflicts


def _body(current: str, target: str, conflicts: list[str]) -> str:
    lines = [f"Updates this repository from service template {current} to {target} (`copier update`).", ""]
    if conflicts:
        lines += ["**Conflicts** (the template and this repository changed the same lines; both sides are "
                  "written inline between `<<<<<<< before updating` and `>>>>>>> after updating`):", ""]
        lines += [f"- `{path}`" for path in conflicts]
    else:
        lines.append("No conflicts.")
    return "\n".join(lines) + "\n"


def _conflicts_in(body: str) -> list[str]:
    return [line[3:-1] for line in body.splitlines() if line.startswith("- `") and line.endswith("`")]


__all__ = ["CONFLICT_MARKER", "KIND", "Config", "Result", "branch_for", "newest_version", "run"]
