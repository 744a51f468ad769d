"""The git forge interface: repositories, files, branches, pull requests and releases.

Flows depend on ``Forge`` only; ``LocalForge`` (bare repositories on disk) is the embedded
implementation, and a hosted forge (Gitea, GitHub ...) is one more class with the same methods.

Every method that changes something adopts before it creates: ``create_repo`` returns an existing
repository, ``open_pull_request`` an open one with the same head and base, ``create_release`` an
existing release, ``commit_files`` makes no commit when the files already have that content.
The ``bool`` in ``(thing, created)`` results says whether this call made it.
"""
from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from stageflow.adapters.git import ref_name_problem
from stageflow.errors import Problem, ValidationFailed
from stageflow.spec.names import REPOSITORY_MAX, label_problem

__all__ = [
    "DEFAULT_AUTHOR",
    "Forge",
    "PullRequest",
    "PullRequestState",
    "Release",
    "RepoInfo",
    "validate_ref_name",
    "validate_repo_name",
]

PullRequestState = Literal["open", "merged", "closed"]
DEFAULT_AUTHOR: tuple[str, str] = ("stageflow", "stageflow@localhost")


class RepoInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    clone_url: str
    default_branch: str
    web_url: str


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    number: int
    title: str
    body: str
    head: str
    base: str
    state: PullRequestState
    merge_commit: str | None = None
    web_url: str


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tag: str
    name: str
    body: str
    commit: str


def validate_repo_name(name: str) -> None:
    """Repository names share the DNS-label alphabet with app names, with a longer limit."""
    problem = label_problem(name, max_length=REPOSITORY_MAX) if isinstance(name, str) else "must be a string"
    if problem is not None:
        raise ValidationFailed(Problem("repository", problem), summary=f"invalid repository name {name!r}")


def validate_ref_name(name: str, *, field: str) -> None:
    """Branch and tag names reach git's command line: refuse anything git or a shell could misread."""
    problem = ref_name_problem(name) if isinstance(name, str) else "must be a string"
    if problem is not None:
        raise ValidationFailed(Problem(field, problem), summary=f"invalid {field} name {name!r}")


@runtime_checkable
class Forge(Protocol):
    """What flows need from a git forge. Unknown repositories raise ``NotFound`` except in
    ``get_*``/``delete_*``, which answer None/False; invalid names raise ``ValidationFailed``."""

    # --- repositories -------------------------------------------------------------------------
    def create_repo(self, name: str, *, description: str = "",
                    default_branch: str = "main") -> tuple[RepoInfo, bool]: ...

    def get_repo(self, name: str) -> RepoInfo | None: ...

    def delete_repo(self, name: str) -> bool: ...

    # --- files and commits --------------------------------------------------------------------
    def read_file(self, repo: str, path: str, ref: str = "main") -> str | None: ...

    def commit_files(self, repo: str, files: dict[str, str | None], message: str, *,
                     branch: str = "main", base: str | None = None,
                     author: tuple[str, str] = DEFAULT_AUTHOR) -> str | None:
        """Write (``None`` deletes) all ``files`` in one commit on ``branch``; create the branch
        from ``base`` (default: the default branch) when missing. None when nothing changed."""
        ...

    def head_commit(self, repo: str, ref: str = "main") -> str | None: ...

    # --- branches -----------------------------------------------------------------------------
    def list_branches(self, repo: str) -> list[str]: ...

    def create_branch(self, repo: str, name: str, from_ref: str = "main") -> bool: ...

    def delete_branch(self, repo: str, name: str) -> bool: ...

    # --- pull requests ------------------------------------------------------------------------
    def find_pull_request(self, repo: str, head: str, base: str = "main",
                          state: PullRequestState | Literal["all"] = "open") -> PullRequest | None: ...

    def open_pull_request(self, repo: str, head: str, base: str, title: str,
                          body: str) -> tuple[PullRequest, bool]: ...

    def get_pull_request(self, repo: str, number: int) -> PullRequest | None: ...

    def merge_pull_request(self, repo: str, number: int, message: str | None = None) -> PullRequest:
        """Merge with a merge commit; an already merged PR is returned unchanged; a conflict
        raises TerminalError and leaves the PR open."""
        ...

    def close_pull_request(self, repo: str, number: int) -> PullRequest: ...

    # --- releases and tags --------------------------------------------------------------------
    def create_release(self, repo: str, tag: str, *, ref: str = "main", name: str | None = None,
                       body: str = "") -> tuple[Release, bool]: ...

    def get_release(self, repo: str, tag: str) -> Release | None: ...

    def list_tags(self, repo: str) -> list[str]: ...
