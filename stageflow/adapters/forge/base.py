"""The git forge interface: repositories, files, branches, pull requests and releases.

Flows depend on ``Forge`` only; ``LocalForge`` (bare repositories on disk) is the embedded
implementation, and a hosted forge (Gitea, GitHub ...) is one more class with the same methods.

Every method that changes something adopts before it creates: ``create_repo`` returns an existing
repository, ``open_pull_request`` an open one with the same head and base, ``create_release`` an
existing release, ``commit_files`` makes no commit when the files already have that content.
The ``bool`` in ``(thing, created)`` results says whether this call made it.

Repository configuration (branch protection, Actions variables and secrets, environments,
webhooks) follows the same rule: each ``set_*``/``ensure_*``/``protect_*`` makes the setting what
it is asked to be and answers whether anything changed. Secret values are write-only: they can be
listed by name and never read back, and they never appear in a message, log line or ``repr``.
"""
from __future__ import annotations

import re
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from stageflow.adapters.git import ref_name_problem, validate_tree_paths
from stageflow.errors import Problem, ValidationFailed
from stageflow.spec.names import REPOSITORY_MAX, label_problem

__all__ = [
    "DEFAULT_AUTHOR",
    "BranchProtection",
    "Environment",
    "Forge",
    "Webhook",
    "PullRequest",
    "PullRequestState",
    "Release",
    "RepoInfo",
    "revert_branch_name",
    "validate_commit",
    "validate_config_name",
    "validate_environment_name",
    "validate_ref_name",
    "validate_repo_name",
    "validate_webhook",
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


class BranchProtection(BaseModel):
    """What merging into a protected branch requires. Checks are kept sorted and unique, so two
    protections compare equal exactly when they demand the same thing."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    required_checks: list[str] = Field(default_factory=list)
    required_reviews: int = Field(1, ge=0, le=6)  # GitHub allows 0..6 approving reviews

    @field_validator("required_checks")
    @classmethod
    def _sorted_unique(cls, checks: list[str]) -> list[str]:
        return sorted(set(checks))


class Environment(BaseModel):
    """A deployment environment; ``reviewers`` (user logins, sorted) must approve jobs that use it."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    reviewers: list[str] = Field(default_factory=list)

    @field_validator("reviewers")
    @classmethod
    def _sorted_unique(cls, reviewers: list[str]) -> list[str]:
        return sorted(set(reviewers))


class Webhook(BaseModel):
    """A repository webhook as the forge reports it: the secret is only known to exist."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    events: list[str]
    has_secret: bool

    @field_validator("events")
    @classmethod
    def _sorted_unique(cls, events: list[str]) -> list[str]:
        return sorted(set(events))


# GitHub's rules for Actions variable and secret names (it upper-cases what it is given; we ask
# for upper case up front so a name reads the same everywhere).
_CONFIG_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*", re.ASCII)
_ENVIRONMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", re.ASCII)
_EVENT_RE = re.compile(r"\*|[a-z][a-z_]*", re.ASCII)


def validate_config_name(name: str, *, field: str = "name") -> None:
    """Actions variable and secret names: ``^[A-Z_][A-Z0-9_]*$`` and not ``GITHUB_*`` (reserved)."""
    if not isinstance(name, str) or not _CONFIG_NAME_RE.fullmatch(name):
        problem = "must match ^[A-Z_][A-Z0-9_]*$"
    elif name.startswith("GITHUB_"):
        problem = "must not start with GITHUB_ (reserved by GitHub)"
    else:
        return
    raise ValidationFailed(Problem(field, problem), summary=f"invalid {field} {name!r}")


def validate_environment_name(name: str) -> None:
    if not isinstance(name, str) or not _ENVIRONMENT_RE.fullmatch(name):
        raise ValidationFailed(Problem("environment", "must be 1-255 letters, digits, '.', '_' or '-', "
                                                      "starting with a letter or digit"),
                               summary=f"invalid environment name {name!r}")


def validate_webhook(url: str, events: list[str]) -> None:
    problems = []
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        problems.append(Problem("url", "must be an http(s) URL with a host and without credentials"))
    if not events:
        problems.append(Problem("events", "must name at least one event"))
    problems += [Problem(f"events[{e!r}]", "must be '*' or a lower-case event name such as 'push'")
                 for e in events if not isinstance(e, str) or not _EVENT_RE.fullmatch(e)]
    if problems:
        raise ValidationFailed(problems, summary="invalid webhook")


def revert_branch_name(number: int) -> str:
    """The branch a revert of pull request ``number`` is proposed from (one per PR, so a re-run
    finds the revert an earlier attempt opened)."""
    return f"revert-pr-{int(number)}"


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


def validate_commit(files: dict[str, str | None], message: str, *, branch: str, base: str | None) -> None:
    """What every forge checks before ``commit_files`` touches anything."""
    validate_ref_name(branch, field="branch")
    if base is not None:
        validate_ref_name(base, field="base")
    validate_tree_paths(list(files))
    if not message.strip():
        raise ValidationFailed(Problem("message", "must not be empty"), summary="invalid commit")


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

    # --- repository configuration -------------------------------------------------------------
    def protect_branch(self, repo: str, branch: str = "main", *, required_checks: list[str],
                       required_reviews: int = 1) -> bool:
        """Require these status checks and this many approving reviews to merge into ``branch``
        (which must exist); True when the protection changed."""
        ...

    def get_branch_protection(self, repo: str, branch: str = "main") -> BranchProtection | None: ...

    def set_variable(self, repo: str, name: str, value: str) -> bool:
        """Create or update an Actions variable; True when it was missing or had another value."""
        ...

    def get_variables(self, repo: str) -> dict[str, str]: ...

    def set_secret(self, repo: str, name: str, value: SecretStr) -> bool:
        """Create or overwrite an Actions secret; True when it may have changed. A forge that
        cannot read values back (GitHub) rewrites an existing secret and answers True."""
        ...

    def list_secrets(self, repo: str) -> list[str]:
        """Secret names, sorted; values are never readable."""
        ...

    def ensure_environment(self, repo: str, name: str, *, reviewers: list[str] | None = None) -> bool:
        """The environment exists and exactly ``reviewers`` (logins; None or [] = nobody) must
        approve its deployments; True when it was created or its reviewers changed."""
        ...

    def get_environment(self, repo: str, name: str) -> Environment | None: ...

    def ensure_webhook(self, repo: str, url: str, *, events: list[str],
                       secret: SecretStr | None = None) -> bool:
        """One JSON webhook per ``url`` with exactly ``events``; True when created or changed.
        A given secret is always (re)written; where it cannot be compared (GitHub) that alone
        counts as a change."""
        ...

    def list_webhooks(self, repo: str) -> list[Webhook]: ...

    def revert_pull_request(self, repo: str, number: int, *,
                            title: str | None = None) -> tuple[PullRequest, bool]:
        """Open a PR from ``revert_branch_name(number)`` into the merged PR's base that undoes its
        merge commit; an open PR from that branch is adopted. Not merged -> TerminalError;
        the revert conflicting with later changes -> TerminalError."""
        ...
